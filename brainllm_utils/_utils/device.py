"""Devices and torch: the one device resolver, lazy torch, TF32 and CPU-thread guards.

Every ``device=`` argument in the package goes through :func:`resolve_device`; every module
that needs torch gets it from :func:`import_torch` (importing the package never imports
torch); CUDA matmul precision is set in one place (:func:`tf32`).
"""

from __future__ import annotations

import contextlib
from typing import Any

from .docs import fill_doc

__all__ = ["resolve_device", "import_torch", "tf32", "torch_threads"]


def import_torch():
    """The ``torch`` module, imported on first use.

    Returns
    -------
    module
        ``torch``.
    """
    import torch

    return torch


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
