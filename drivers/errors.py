"""Errors the drivers raise when an instrument reports a problem."""
from __future__ import annotations


class InstrumentError(RuntimeError):
    """The instrument reported an error (its error queue or an error reply)."""

    def __init__(self, instrument: str, errors: list[tuple[int, str]] | str):
        self.instrument = instrument
        self.errors = errors
        text = errors if isinstance(errors, str) else "; ".join(f"{c}: {m}" for c, m in errors)
        super().__init__(f"{instrument} reported: {text}")
