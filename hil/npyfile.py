"""A real numeric array from a user's ``.npy`` file, checked on entry (no pickles)."""
from __future__ import annotations

import os

import numpy as np


def read_npy(path: str | os.PathLike, what: str, *, ndim: int | None = None) -> np.ndarray:
    """The float64 array in ``path`` (a ``numpy.save`` file); ``ValueError`` naming ``what`` (the option or
    field it came from) if it is missing, not a .npy array, holds no real numbers (text, objects, booleans,
    complex values), or has other than ``ndim`` dimensions. Finite values and sizes are the caller's."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{what}: {path} not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{what}: cannot read {path} as a .npy array (numpy.save, no pickles): {exc}") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{what}: {path} holds several arrays; give one .npy array")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{what}: {path} holds {arr.dtype} values, not real numbers")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{what}: {path} holds an array of shape {arr.shape}; a {ndim}-D array is needed")
    return arr.astype(np.float64)


__all__ = ["read_npy"]
