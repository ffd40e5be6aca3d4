"""The plug-in interface: everything the bench needs to know of one instrument model.

A plug-in states the model's facts (how it is reached, its channels, the roles it can
serve, its output ranges, its shortest pulse), how its driver opens, how its
identification query reads, and how its driver is composed into bench roles. The safe
state lives in the driver itself (``driver.shutdown()``, as in pymeasure). Plug-ins are
listed once, in :data:`hil.instruments.PLUGINS`; the bench, the bench-file schema and the
simulated bench read them from there.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field

from ..roles import RoleNotServed  # defined with the roles, which import nothing of ours

if TYPE_CHECKING:  # pragma: no cover
    from ..roles import GateSupply, Pulser, Reader, Selector, VectorMultiplier
    from ..station import Station

#: what an instrument can be in a bench file's wiring
ROLE_NAMES = ("addresser", "read", "pulse", "gate", "sense")




class VisaOptions(BaseModel):
    """``options`` of a VISA instrument's bench-file entry: passed to PyVISA when it opens."""

    model_config = ConfigDict(extra="forbid")
    visa_library: Optional[str] = None  # "@py" (pyvisa-py) or a VISA shared library path
    read_termination: Optional[str] = None
    write_termination: Optional[str] = None
    baud_rate: Optional[int] = Field(default=None, ge=1, strict=True)  # serial VISA resources (ASRL)
    query_delay: Optional[float] = Field(default=None, ge=0.0, le=10.0, allow_inf_nan=False)  # s


class NoOptions(BaseModel):
    """An instrument whose driver takes no options."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Identity:
    """An instrument's answer to its identification query, split into fields."""

    make: str
    model: str
    serial: str
    firmware: str
    idn: str  # the reply as received

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def parse_idn(reply: str) -> Identity:
    """``MAKE,MODEL,SERIAL,FIRMWARE`` (IEEE 488.2 ``*IDN?``), fields stripped; missing fields empty."""
    fields = [f.strip() for f in str(reply).strip().split(",")]
    fields += [""] * (4 - len(fields))
    return Identity(fields[0], fields[1], fields[2], ",".join(fields[3:]).strip(","), str(reply).strip())


class InstrumentPlugin:
    """One instrument model. Subclass it in ``hil/instruments/<model>.py`` and list it in
    :data:`hil.instruments.PLUGINS`.

    Class attributes are the model's facts, in SI units. Role factories return the
    objects a :class:`~hil.bench.Bench` is composed of; a model overrides only the
    factories of the roles it lists in ``roles``.
    """

    #: model name as written in bench files (lower case)
    model: ClassVar[str] = ""
    #: one line for listings and error messages
    description: ClassVar[str] = ""
    #: "visa" (PyVISA resource) or "serial" (pyserial port / URL)
    kind: ClassVar[str] = "visa"
    #: output endpoints ("1", "2", "a", "b"); () for a single output
    channels: ClassVar[tuple[str, ...]] = ()
    #: which wiring roles it can serve (subset of :data:`ROLE_NAMES`)
    roles: ClassVar[frozenset[str]] = frozenset()
    #: regular expression the *IDN? model field must match (case-insensitive, whole field)
    idn_model: ClassVar[str] = ""
    #: V, (lowest, highest) level its outputs can source
    v_range: ClassVar[tuple[float, float] | None] = None
    #: A, (smallest, largest) current compliance (SMUs)
    i_compliance_range: ClassVar[tuple[float, float] | None] = None
    #: s, (shortest, longest) pulse it can make (pulsers)
    pulse_width_range: ClassVar[tuple[float, float] | None] = None
    #: "module:Class" of its emulator on a simulated bench
    emulator: ClassVar[str] = ""
    #: schema of the bench file's ``options`` for its driver
    options_schema: ClassVar[type[BaseModel]] = VisaOptions
    #: wiring sub-section this model reads when it is the addresser (e.g. "matrix"), and its schema
    wiring_section: ClassVar[str | None] = None
    wiring_schema: ClassVar[Any] = None

    # ---- opening ----------------------------------------------------------------------
    @classmethod
    def driver_class(cls) -> type:
        raise RoleNotServed(f"{cls.model}: no driver")

    @classmethod
    def open(cls, target: Any, timeout: float, options: Mapping[str, Any]) -> Any:
        """The driver on ``target``: an address string or an in-process adapter.

        ``timeout`` (s) applies to every reply; ``options`` are the bench file's keyword
        arguments for the driver (``visa_library``, ...).
        """
        driver = cls.driver_class()
        if isinstance(target, str):
            return driver(target, timeout=int(round(timeout * 1000)), **dict(options))
        return driver(target)

    @classmethod
    def identify(cls, driver: Any) -> Identity:
        """Ask the instrument who it is (one query)."""
        return parse_idn(driver.ask("*IDN?"))

    @classmethod
    def matches(cls, identity: Identity) -> bool:
        """True when ``identity`` is an instrument of this model."""
        return bool(cls.idn_model) and re.fullmatch(cls.idn_model, identity.model, re.IGNORECASE) is not None

    @classmethod
    def adopt(cls, driver: Any, identity: Identity, channels_used: set[str]) -> str | None:
        """Fit the driver to the exact model that answered; a problem sentence if the wiring
        asks for something that model lacks (e.g. channel 2 of a one-channel variant)."""
        return None

    @classmethod
    def safe_state(cls, driver: Any) -> None:
        """Sources at 0 V and off, switches open; confirmed by the instrument (the driver's ``shutdown()``)."""
        driver.shutdown()

    @classmethod
    def emulator_options(cls, wiring: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments its emulator needs from the wiring when this model is the addresser."""
        return {}

    @classmethod
    def emulator_class(cls) -> type:
        module, _, name = cls.emulator.partition(":")
        if not module:
            raise LookupError(f"{cls.model} has no emulator: it cannot be on a simulated bench")
        return getattr(importlib.import_module(module), name)

    # ---- roles ------------------------------------------------------------------------
    @classmethod
    def source(cls, station: "Station", name: str, channel: str, i_compliance: float):
        """A :class:`~hil.instruments.smu.VoltageSource` on one output (SMUs)."""
        raise RoleNotServed(f"a {cls.model} is not a voltage source")

    @classmethod
    def pulser(cls, station: "Station", name: str, channel: str) -> "Pulser":
        from .smu import SmuPulser

        return SmuPulser(station.source(name, channel))

    @classmethod
    def gate(cls, station: "Station", name: str, channel: str) -> "GateSupply":
        from .smu import SourceGate

        return SourceGate(station.source(name, channel))

    @classmethod
    def selector(cls, station: "Station", name: str, wiring: Mapping[str, Any]) -> "Selector":
        raise RoleNotServed(f"a {cls.model} cannot address a chip")

    @classmethod
    def arrays(cls, station: "Station", name: str, wiring: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
        """The chip's arrays the addresser reaches, name -> (rows, cols)."""
        raise RoleNotServed(f"a {cls.model} cannot address a chip")

    @classmethod
    def sense(cls, station: "Station", name: str, source, selector: "Selector") -> "Reader":
        raise RoleNotServed(f"a {cls.model} has no per-line sense")

    @classmethod
    def vmm(cls, station: "Station", name: str) -> "VectorMultiplier | None":
        return None


__all__ = ["InstrumentPlugin", "Identity", "parse_idn", "ROLE_NAMES", "VisaOptions", "NoOptions"]
