"""Devices and torch: the one device resolver, lazy torch, TF32 and CPU-thread guards.

Every ``device=`` argument in the package goes through :func:`resolve_device`; every module
that needs torch gets it from :func:`import_torch` (importing the package never imports
torch); CUDA matmul precision is set in one place (:func:`tf32`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from .docs import fill_doc

__all__ = ["resolve_device", "import_torch", "tf32", "torch_threads", "cpu_has_native_bf16"]


def import_torch():
    """The ``torch`` module, imported on first use.

    Returns
    -------
    module
        ``torch``.
    """
    import torch

    return torch


def cpu_has_native_bf16() -> bool:
    """Whether this CPU runs bf16 natively in oneDNN (AVX512-BF16 or AMX kernels).

    Where it does, bf16 matrix products run several times faster than float32 ones (AMX:
    about 4× for MPNet's layers on a 2026 Xeon); where it does not, bf16 is emulated and
    slower than float32. The ``"auto"`` precisions of training
    (:func:`brainllm_utils.vision.train_precision`) and of text embeddings
    (:func:`brainllm_utils.features.embed_sentences`) follow it.

    The environment variable ``BRAINLLM_CPU_BF16`` overrides the probe: ``0`` (the same
    float32 numbers on every CPU, as the test suite runs) or ``1``.

    Returns
    -------
    bool
        ``False`` also for a torch without the probe.

    Raises
    ------
    ValueError
        When ``BRAINLLM_CPU_BF16`` is set to anything but ``0`` or ``1``.
    """
    forced = os.environ.get("BRAINLLM_CPU_BF16", "").strip()
    if forced:
        if forced not in ("0", "1"):
            raise ValueError(f"BRAINLLM_CPU_BF16={forced!r}: expected 0 or 1 (or unset: probe the CPU)")
        return forced == "1"
    try:
        return bool(import_torch().ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe: assume not
        return False


@fill_doc
def resolve_device(device: Any = "auto") -> str:
    """``"auto"``/``None`` → ``"cuda"`` when torch sees a GPU, else ``"cpu"``.

    Explicit values (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``) are validated;
    asking for CUDA without a GPU raises a ``RuntimeError`` that says so.

    Parameters
    ----------
    %(device)s

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises
    ------
    ValueError
        For a value that is not a CPU or CUDA device.
    RuntimeError
        For a CUDA device when ``torch.cuda.is_available()`` is False.
    """
    torch = import_torch()

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r}: expected 'auto', 'cpu' or 'cuda[:i]'") from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: expected 'auto', 'cpu' or 'cuda[:i]'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} requested but torch.cuda.is_available() is False")
    return str(dev)


@contextlib.contextmanager
def tf32(allow: bool = False):
    """TF32 for CUDA float32 matmuls on (``allow=True``) or off inside the block; restored after.

    Uses ``torch.backends.cuda.matmul.fp32_precision`` where torch has it (2.9+), else the
    older ``allow_tf32`` flag. Without CUDA the setting has no effect.

    Parameters
    ----------
    allow : bool, default=False
        Allow TF32 (faster, about 10 mantissa bits) for the block; ``False`` forces IEEE
        float32.
    """
    matmul = import_torch().backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        old = matmul.fp32_precision
        matmul.fp32_precision = "tf32" if allow else "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = old
    else:  # pragma: no cover - torch < 2.9
        old = matmul.allow_tf32
        matmul.allow_tf32 = bool(allow)
        try:
            yield
        finally:
            matmul.allow_tf32 = old


class torch_threads:
    """``torch.set_num_threads(n)`` for a block when no GPU is present (``None``: no change).

    A context manager; the previous thread count is restored on exit.

    Parameters
    ----------
    n : int or None
        CPU threads inside the block; ignored when torch sees a GPU.
    """

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        torch = import_torch()
        self.prev = torch.get_num_threads()
        if self.n is not None and not torch.cuda.is_available():
            torch.set_num_threads(int(self.n))
        return self

    def __exit__(self, *exc):
        import_torch().set_num_threads(self.prev)
        return False
