"""Run the solvers with one BLAS thread.

The products here are crossbar-sized (tens to hundreds of rows); on them a multi-threaded
BLAS spends more time synchronising than computing (the test suite ran 8x slower with
OpenBLAS threads on a loaded 2-core machine). threadpoolctl ships with scikit-learn.
"""
from __future__ import annotations

import contextlib
import functools

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # without it the solvers still run, with the BLAS's own threading
    threadpool_limits = None


def single_blas_thread(func):
    """Decorator: call ``func`` with the BLAS limited to one thread."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        ctx = (threadpool_limits(limits=1, user_api="blas") if threadpool_limits is not None
               else contextlib.nullcontext())
        with ctx:
            return func(*args, **kwargs)
    return wrapper
