"""In-process transports: the drivers' bytes go straight to an emulator and back.

Two ways in, both byte-exact with the socket and serial paths:

* :class:`EmulatorAdapter`, a pymeasure adapter for VISA-style drivers (SCPI, TSP):
  ``write`` hands the encoded command to the emulator, ``read`` returns its next reply
  line, and a query the instrument does not answer raises pyvisa's own timeout error.
* the ``hilsim://NAME`` pyserial URL (:class:`EmulatorSerial`), for drivers that open a
  serial port (the addressing board); ``NAME`` is looked up in :data:`SERIAL_ENDPOINTS`.
"""
from __future__ import annotations

import itertools
import threading

import serial
from pymeasure.adapters import Adapter
from pyvisa import constants
from pyvisa.errors import VisaIOError
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

SERIAL_SCHEME = "hilsim"
#: hilsim:// endpoint name -> emulator (anything with ``feed(bytes) -> bytes``)
SERIAL_ENDPOINTS: dict[str, object] = {}
_ENDPOINT_LOCK = threading.Lock()
_endpoint_ids = itertools.count(1)

if "hil.serial_handlers" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("hil.serial_handlers")


def register_serial_endpoint(name: str, emulator) -> str:
    """Publish an emulator as ``hilsim://<unique name>`` and return that URL."""
    with _ENDPOINT_LOCK:
        key = f"{name}-{next(_endpoint_ids)}"
        SERIAL_ENDPOINTS[key] = emulator
    return f"{SERIAL_SCHEME}://{key}"


def unregister_serial_endpoint(url: str) -> None:
    SERIAL_ENDPOINTS.pop(url.split("://", 1)[-1], None)


class EmulatorAdapter(Adapter):
    """pymeasure adapter that talks to an emulator in the same process."""

    def __init__(self, emulator, write_termination: str = "\n", read_termination: str = "\n",
                 log=None, **kwargs):
        super().__init__(log=log)
        self.emulator = emulator
        self.write_termination = write_termination
        self.read_termination = read_termination
        self._rx = b""
        self.connection = None

    def _write(self, command: str, **kwargs) -> None:
        self._write_bytes((command + self.write_termination).encode("ascii"))

    def _write_bytes(self, content: bytes, **kwargs) -> None:
        if self.emulator is None:
            raise VisaIOError(constants.StatusCode.error_connection_lost)
        self._rx += self.emulator.feed(content)

    def _read(self, **kwargs) -> str:
        term = self.read_termination.encode("ascii")
        idx = self._rx.find(term) if term else (len(self._rx) - 1 if self._rx else -1)
        if idx < 0:
            # the instrument sent nothing back: what VISA reports after its timeout
            raise VisaIOError(constants.StatusCode.error_timeout)
        line, self._rx = self._rx[:idx], self._rx[idx + len(term):]
        return line.decode("ascii")

    def _read_bytes(self, count: int, break_on_termchar: bool = False, **kwargs) -> bytes:
        if count < 0 or count > len(self._rx):
            if not self._rx:
                raise VisaIOError(constants.StatusCode.error_timeout)
            count = len(self._rx)
        if break_on_termchar and self.read_termination:
            idx = self._rx.find(self.read_termination.encode("ascii"))
            if 0 <= idx < count:
                count = idx + len(self.read_termination)
        out, self._rx = self._rx[:count], self._rx[count:]
        return out

    def flush_read_buffer(self) -> None:
        self._rx = b""

    def close(self) -> None:
        self.emulator = None

    def __repr__(self) -> str:
        return f"<EmulatorAdapter({type(self.emulator).__name__})>"


class EmulatorSerial(SerialBase):
    """pyserial port for ``hilsim://NAME``: bytes written reach the emulator, its replies are read."""

    def open(self) -> None:
        if self._port is None:
            raise SerialException("port must be configured before it can be used")
        if self.is_open:
            raise SerialException("port already open")
        name = str(self._port).split("://", 1)[-1]
        emulator = SERIAL_ENDPOINTS.get(name)
        if emulator is None:
            raise SerialException(f"no simulated instrument at {self._port!r}")
        self._emulator = emulator
        self._rx = bytearray()
        self.is_open = True

    def close(self) -> None:
        self.is_open = False
        self._emulator = None

    def _reconfigure_port(self) -> None:
        """Line settings mean nothing in-process."""

    def from_url(self, url: str) -> str:
        return url

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def write(self, data) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        data = bytes(data)
        self._rx += self._emulator.feed(data)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self.is_open:
            raise PortNotOpenError()
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def read_until(self, expected: bytes = b"\n", size: int | None = None) -> bytes:
        """Whole reply lines at once (pyserial's default reads byte by byte)."""
        if not self.is_open:
            raise PortNotOpenError()
        idx = self._rx.find(expected)
        n = len(self._rx) if idx < 0 else idx + len(expected)
        if size is not None:
            n = min(n, size)
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        """Nothing is buffered on the way out."""

    def flush(self) -> None:
        """Writes are delivered immediately."""


__all__ = ["EmulatorAdapter", "EmulatorSerial", "register_serial_endpoint", "unregister_serial_endpoint",
           "SERIAL_ENDPOINTS", "SERIAL_SCHEME"]
