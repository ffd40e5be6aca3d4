"""Instrument plug-ins: one module per instrument model, listed once in :data:`PLUGINS`.

A new instrument is one file (a subclass of :class:`InstrumentPlugin` named ``Plugin``,
see ``keithley2450.py`` for the shortest) and one line below. Everything else (the
bench-file schema, opening, identity checks, roles, safe state, the simulated bench)
reads the registry. :func:`register` adds a plug-in at run time (a lab's own instrument,
tests).
"""
from __future__ import annotations

import difflib

from . import ab64, keithley707b, keithley2450, keithley2600b, keysight81160a, keysightb2900
from simulated_bench import instruments as _simulated_instruments

from .base import Identity, InstrumentPlugin, parse_idn

#: the instrument models a bench file may name
PLUGINS: list[type[InstrumentPlugin]] = [
    keithley2450.Plugin,
    keithley2600b.Plugin,
    keysight81160a.Plugin,
    keithley707b.Plugin,
    ab64.Plugin,
    keysightb2900.Plugin,
]


def models() -> dict[str, type[InstrumentPlugin]]:
    """Model name -> plug-in, for every registered plug-in."""
    return {p.model: p for p in PLUGINS}


def plugin_for(model: str) -> type[InstrumentPlugin]:
    """The plug-in of ``model``; KeyError naming the close match otherwise."""
    known = models()
    try:
        return known[model]
    except KeyError:
        close = difflib.get_close_matches(str(model), list(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
        raise KeyError(f"unknown instrument model {model!r}{hint}") from None


def identify_model(identity: Identity) -> str | None:
    """The registered model an identification belongs to, if any."""
    for p in PLUGINS:
        if p.matches(identity):
            return p.model
    return None


def emulator_of(model: str) -> type:
    """The emulator class of ``model`` (what its plug-in names); the simulated bench looks models up here."""
    return plugin_for(model).emulator_class()


def register(plugin: type[InstrumentPlugin]) -> type[InstrumentPlugin]:
    """Add (or replace) a plug-in; usable as a class decorator."""
    if not plugin.model:
        raise ValueError("a plug-in needs a model name")
    unregister(plugin.model)
    PLUGINS.append(plugin)
    return plugin


def unregister(model: str) -> None:
    PLUGINS[:] = [p for p in PLUGINS if p.model != model]


# the simulated bench may not import hil: hand it this registry's look-up
_simulated_instruments.set_model_resolver(emulator_of)

__all__ = ["PLUGINS", "emulator_of", "InstrumentPlugin", "Identity", "parse_idn", "models", "plugin_for", "identify_model",
           "register", "unregister"]
