"""Emulators served as TCP instruments on 127.0.0.1.

Each emulator listens on its own port: VISA clients open it as
``TCPIP0::127.0.0.1::PORT::SOCKET`` (pyvisa-py, LF-terminated), pyserial clients as
``socket://127.0.0.1:PORT``. Servers bind the loopback interface only, take an
ephemeral port unless told otherwise, and close their client connections on shutdown.

What arrives is untrusted: each connection's input is split into lines by a bounded
:class:`~.base.LineBuffer` (an over-long line is dropped and reported as the instrument
reports an input-buffer overrun), and a server takes at most :data:`MAX_CONNECTIONS`
clients at a time (further ones are closed at once, as an instrument with all its
sessions in use refuses them). A connection may stay idle between commands as long as
it likes, but a half command (bytes without their terminator) not completed within
:data:`PARTIAL_LINE_TIMEOUT_S` drops it, so clients that stall mid-line cannot hold
every session.
"""
from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import Mapping

from .base import Emulator, LineBuffer

HOST = "127.0.0.1"
MAX_CONNECTIONS = 8  # per instrument
PARTIAL_LINE_TIMEOUT_S = 30.0  # s a half-received line may wait for the rest of it
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _Handler(socketserver.BaseRequestHandler):
    def setup(self) -> None:
        self.server.clients.add(self.request)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        emulator: Emulator = self.server.emulator
        lines = LineBuffer(emulator.terminator)
        while True:
            try:
                self.request.settimeout(PARTIAL_LINE_TIMEOUT_S if lines.pending else None)
                data = self.request.recv(65536)
            except OSError:  # socket.timeout included: a stalled half command drops the connection
                return
            if not data:
                return
            if _QUICKACK is not None:
                # acknowledge at once: clients that leave Nagle on would otherwise wait out
                # the delayed ACK (~40 ms) between a write and the query that follows it
                with contextlib.suppress(OSError):
                    self.request.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            emulator.clock.message(emulator.clock_name, emulator.transport, len(data))
            complete, overruns = lines.push(data)
            # whole lines only, so clients on separate connections never interleave bytes
            reply = emulator.feed_lines(complete, overruns)
            if reply:
                try:
                    self.request.sendall(reply)
                except OSError:
                    return

    def finish(self) -> None:
        self.server.clients.discard(self.request)


class InstrumentServer(socketserver.ThreadingTCPServer):
    """One emulator on one loopback TCP port, served from a background thread."""

    daemon_threads = True
    allow_reuse_address = True

    def verify_request(self, request, client_address) -> bool:
        """Refuse a client beyond :data:`MAX_CONNECTIONS` (the server closes its socket)."""
        with self._count_lock:
            if self.connections >= MAX_CONNECTIONS:
                return False
            self.connections += 1
            return True

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self.connections -= 1

    def __init__(self, emulator: Emulator, port: int = 0):
        super().__init__((HOST, port), _Handler)
        self.emulator = emulator
        self.clients: set[socket.socket] = set()
        self.connections = 0
        self._count_lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sim-{type(emulator).__name__}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def close(self) -> None:
        """Stop serving and drop every client connection."""
        self.shutdown()
        for sock in list(self.clients):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self.server_close()
        self._thread.join(timeout=2)


class ServedInstruments:
    """Every emulator of a simulated bench on its own loopback port."""

    def __init__(self, emulators: Mapping[str, Emulator], ports: Mapping[str, int] | None = None):
        self.servers: dict[str, InstrumentServer] = {}
        try:
            for name, emu in emulators.items():
                self.servers[name] = InstrumentServer(emu, (ports or {}).get(name, 0))
        except BaseException:
            self.close()
            raise

    def address(self, name: str, kind: str = "visa") -> str:
        """``TCPIP0::127.0.0.1::PORT::SOCKET`` (kind "visa") or ``socket://127.0.0.1:PORT`` (kind "serial")."""
        port = self.servers[name].port
        return f"socket://{HOST}:{port}" if kind == "serial" else f"TCPIP0::{HOST}::{port}::SOCKET"

    def close(self) -> None:
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.close()
        self.servers.clear()


def serve_instruments(sim, ports: Mapping[str, int] | None = None) -> ServedInstruments:
    """Serve every emulator of a :class:`SimulatedInstruments` on 127.0.0.1."""
    return ServedInstruments(sim.emulators, ports)
