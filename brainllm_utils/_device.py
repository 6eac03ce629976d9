"""The one device-handling path: every ``device=`` argument in the package goes through here."""

from __future__ import annotations

from typing import Any

__all__ = ["resolve_device"]


def resolve_device(device: Any = "auto") -> str:
    """``"auto"``/``None`` → ``"cuda"`` when torch sees a GPU, else ``"cpu"``.

    Explicit values (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``) are validated;
    asking for CUDA without a GPU raises a ``RuntimeError`` that says so.
    """
    import torch

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
