"""The open instruments of one bench: drivers, identities, failure handling, safe state.

Every role sends its commands inside :meth:`Station.guard`, naming what it is doing. A
transport failure (timeout, dropped connection) then ends in ONE
:class:`BenchConnectionError` that names the instrument, what it was doing and its
timeout, after exactly one attempt per instrument to reach its safe state: an
instrument that stopped answering is tried once more (it may have recovered) and then
left alone for the rest of the session, so a hung instrument costs about twice its
timeout, never a cascade of further timeouts or tracebacks.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator

import serial
from pymeasure.adapters import VISAAdapter
from pyvisa.errors import VisaIOError

from drivers.errors import InstrumentError

from .instruments import plugin_for
from .instruments.base import Identity, InstrumentPlugin

if TYPE_CHECKING:  # pragma: no cover
    from .benchfile import BenchSpec
    from .instruments.smu import VoltageSource

#: transport errors that mean the instrument is gone or silent
TRANSPORT_ERRORS = (VisaIOError, serial.SerialException, OSError, EOFError, TimeoutError)


class BenchConnectionError(RuntimeError):
    """An instrument could not be opened or stopped answering; outputs were switched off where possible."""


class InstrumentIdentityError(BenchConnectionError):
    """The instrument at an address is not the model the bench file names; nothing was sourced."""


class Station:
    """The instruments of a bench: driver, plug-in and identity per instrument name."""

    def __init__(self, spec: "BenchSpec"):
        self.spec = spec
        self.drivers: dict[str, Any] = {}
        self.identities: dict[str, Identity] = {}
        self._sources: dict[str, "VoltageSource"] = {}
        self._cache_resets: list[Callable[[], None]] = []
        self._cleanup: list[Callable[[], None]] = []
        #: instruments that stopped answering and had their one safe-state attempt
        self.given_up: set[str] = set()

    # ---- composition ------------------------------------------------------------------
    def plugin(self, name: str) -> type[InstrumentPlugin]:
        return plugin_for(self.spec.instruments[name].model)

    def add(self, name: str, driver: Any) -> None:
        self.drivers[name] = driver

    def source(self, name: str, channel: str) -> "VoltageSource":
        """The voltage source on ``name.channel`` (one object per output, shared by its roles)."""
        key = f"{name}.{channel}" if channel else name
        if key not in self._sources:
            self._sources[key] = self.plugin(name).source(self, name, channel, self.spec.limits.i_compliance)
        return self._sources[key]

    def on_cleanup(self, fn: Callable[[], None]) -> None:
        self._cleanup.append(fn)

    def cached(self, reset: Callable[[], None]) -> None:
        """Register a role's cache reset: called whenever the instruments' state is uncertain."""
        self._cache_resets.append(reset)

    def forget_state(self) -> None:
        for reset in self._cache_resets:
            reset()

    def describe(self, name: str) -> str:
        inst = self.spec.instruments[name]
        return f"{name} ({inst.model} at {inst.address})"

    # ---- failures ---------------------------------------------------------------------
    @contextlib.contextmanager
    def guard(self, name: str, doing: str = "") -> Iterator[None]:
        """Turn a transport failure on ``name`` into one safe-state attempt per instrument and
        one :class:`BenchConnectionError` saying who failed while doing what."""
        if name in self.given_up:
            raise BenchConnectionError(f"{self.describe(name)} stopped answering earlier in this session; "
                                       f"reopen the bench once it is back")
        try:
            yield
        except TRANSPORT_ERRORS as exc:
            self.forget_state()
            report = self._all_off(suspect=name)
            timeout = self.spec.instruments[name].timeout
            what = f" while {doing}" if doing else ""
            raise BenchConnectionError(f"{self.describe(name)} did not answer{what} (timeout {timeout:g} s): "
                                       f"{_short(exc)}; {report}") from exc
        except InstrumentError:
            self.forget_state()
            raise

    def _all_off(self, suspect: str | None = None) -> str:
        """One safe-state attempt per instrument not yet given up; a sentence saying how it went."""
        reached, failed = [], []
        for name, driver in self.drivers.items():
            # never command an instrument that has not yet proved to be the model its driver speaks to
            if name in self.given_up or name not in self.identities:
                continue
            try:
                if name == suspect:
                    _discard_late_replies(driver.adapter)
                self.plugin(name).safe_state(driver)
                reached.append(name)
            except Exception:  # keep switching the others off
                failed.append(name)
                self.given_up.add(name)
        text = f"outputs switched off on {', '.join(reached) or 'no instrument'}"
        if failed:
            text += f"; could not reach {', '.join(failed)} (switch it off by hand)"
        return text

    def outputs_off(self) -> None:
        """Every instrument to its safe state; raises only for an instrument that fails now."""
        self.forget_state()
        before = set(self.given_up)
        self._all_off()
        failed = sorted(self.given_up - before)
        if failed:
            raise BenchConnectionError(f"could not switch off {', '.join(map(self.describe, failed))}: "
                                       f"it did not answer; switch it off by hand")

    def close(self) -> None:
        for driver in self.drivers.values():
            with contextlib.suppress(Exception):
                driver.adapter.close()
        for fn in self._cleanup:
            with contextlib.suppress(Exception):
                fn()
        self._cleanup.clear()


def _discard_late_replies(adapter: Any) -> None:
    """Drop what a slow instrument sent after its timeout, so it cannot answer the next query.

    Not over pyvisa: pyvisa-py's buffer clear loops forever on a socket the peer closed.
    """
    if isinstance(adapter, VISAAdapter):
        return
    with contextlib.suppress(Exception):
        adapter.flush_read_buffer()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


__all__ = ["Station", "BenchConnectionError", "InstrumentIdentityError", "TRANSPORT_ERRORS"]
