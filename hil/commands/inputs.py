"""Every number, index list and array that enters through the command line, checked on entry.

A value that is not finite, outside its physical range or of the wrong shape is refused
with a message naming the option, before a bench is opened.
"""
from __future__ import annotations

import math

import click
import numpy as np


class Finite(click.ParamType):
    """A finite float in [lo, hi] (``lo_open``: lo itself excluded), with the unit in messages."""

    name = "number"

    def __init__(self, lo: float | None = None, hi: float | None = None, unit: str = "", lo_open: bool = False):
        self.lo, self.hi, self.unit, self.lo_open = lo, hi, unit, lo_open

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            x = value
        else:
            try:
                x = float(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        u = f" {self.unit}" if self.unit else ""
        if self.lo is not None and (x < self.lo or (self.lo_open and x == self.lo)):
            self.fail(f"{x:g}{u} is {'not above' if self.lo_open else 'below'} {self.lo:g}{u}", param, ctx)
        if self.hi is not None and x > self.hi:
            self.fail(f"{x:g}{u} is above {self.hi:g}{u}", param, ctx)
        return x


def span(text: str | None, n: int, option: str) -> list[int] | None:
    """``"a:b"`` (half-open) or ``"a,b,c"`` -> indices within 0..n-1; None for everything.

    Repeated, empty or out-of-range selections are refused (the runner checks the same).
    """
    if text is None or text == "":
        return None
    try:
        if ":" in text:
            a, _, b = text.partition(":")
            out = list(range(int(a) if a.strip() else 0, int(b) if b.strip() else n))
        else:
            out = [int(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not 'a:b' or 'a,b,c' of whole numbers", param_hint=option) from None
    if not out:
        raise click.BadParameter(f"{text!r} selects nothing", param_hint=option)
    bad = [v for v in out if not 0 <= v < n]
    if bad:
        raise click.BadParameter(f"{bad[0]} is outside the chip's 0..{n - 1}", param_hint=option)
    if len(set(out)) != len(out):
        dup = next(v for v in out if out.count(v) > 1)
        raise click.BadParameter(f"{dup} is given more than once", param_hint=option)
    return out


def load_npy(path: str, option: str, *, ndim: int | None = None) -> np.ndarray:
    """A real numeric array from a .npy file (no pickles), of ``ndim`` dimensions if given
    (:func:`hil.npyfile.read_npy`; its refusal becomes a usage error naming ``option``)."""
    from hil.npyfile import read_npy

    try:
        return read_npy(path, option, ndim=ndim)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{option}: "), param_hint=option) from None


bench_option = click.option("--bench", "bench_path", type=click.Path(exists=True, dir_okay=False), default=None,
                            help="bench file (default: the embedded simulated bench)")
overwrite_option = click.option("--overwrite", is_flag=True, default=False,
                                help="start the run file over instead of resuming it (a deliberate restart)")
