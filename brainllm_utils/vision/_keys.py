"""Cache keys shared by the vision modules."""

from __future__ import annotations

import hashlib
import json

import numpy as np

__all__ = ["CACHE_FORMAT", "sha", "ids_key"]

CACHE_FORMAT = 1


def sha(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype.str, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif isinstance(p, bytes):
            h.update(p)
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def ids_key(images, image_ids) -> str:
    if image_ids is not None:
        return sha("ids", np.asarray(image_ids).astype(np.int64))[:16]
    return sha("pixels", np.asarray(images))[:16]
