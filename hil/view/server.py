"""The live view: a Bokeh server that follows one run file and shows it to any number of browsers.

Bound to 127.0.0.1 unless asked otherwise; any other address needs a token, which the
browser presents once as ``?token=...`` and then as a cookie (a wrong or missing token
gets HTTP 403 for the page and the websocket). The view is read-only: the file is
opened read-only (see :mod:`hil.view.reader`) and the page has no controls that write.
"""
from __future__ import annotations

import errno
import hmac
import ipaddress
import os
import secrets
import socket
from typing import Any, Mapping

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.document import Document
from bokeh.server.auth_provider import AuthProvider
from bokeh.server.server import Server
from tornado.web import HTTPError
from tornado.websocket import WebSocketHandler

from .figures import Derive, RunPage
from .reader import RunFollower

POLL_MS = 200  # how often a page checks the file (a stat; a read only when it changed)
TOKEN_COOKIE = "hil_view_token"


class ViewError(ValueError):
    """A view that must not be started as asked (e.g. on a network address without a token)."""


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class TokenAuth(AuthProvider):
    """Lets in a request carrying the token (query ``token`` or the cookie it sets); 403 otherwise."""

    def __init__(self, token: str):
        self._token = token
        super().__init__()

    def _ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self._token.encode())

    @property
    def get_user(self):
        def get_user(handler) -> str | None:
            if self._ok(handler.get_argument("token", None)):
                if not isinstance(handler, WebSocketHandler):  # the page's arguments reach the websocket too
                    handler.set_cookie(TOKEN_COOKIE, self._token, httponly=True, samesite="Strict")
                return "viewer"
            return "viewer" if self._ok(handler.get_cookie(TOKEN_COOKIE)) else None
        return get_user

    @property
    def get_login_url(self):
        def refuse(handler) -> str:
            raise HTTPError(403, reason="wrong or missing token")
        return refuse


def make_application(path: str, code_names: Mapping[str, Mapping[int, str]] | None = None,
                     derive: Derive | None = None, poll_ms: int = POLL_MS) -> Application:
    """Bokeh application: every browser session gets its own page; all share one file follower."""
    follower = RunFollower(path)
    title = f"rram-hil run: {os.path.basename(path)}"

    def modify_doc(doc: Document) -> None:
        page = RunPage(code_names, derive, title=title)
        seen = {"version": -1}

        def refresh() -> None:
            follower.poll()
            if follower.snapshot is None:
                if follower.error:
                    page.show_error(follower.error)
                return
            if follower.version != seen["version"]:
                seen["version"] = follower.version
                page.update(follower.snapshot, follower.history)

        refresh()
        doc.title = title
        doc.add_root(page.layout)
        doc.add_periodic_callback(refresh, poll_ms)

    return Application(FunctionHandler(modify_doc))


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class ViewServer:
    """A started (not yet running) live-view server; run the IOLoop to serve, :meth:`stop` to end."""

    def __init__(self, path: str | os.PathLike, address: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 code_names: Mapping[str, Mapping[int, str]] | None = None, derive: Derive | None = None,
                 poll_ms: int = POLL_MS, **server_kwargs: Any):
        if not is_loopback(address) and not token:
            raise ViewError(f"serving on {address} exposes the run to the network: give a token")
        if token is not None and len(token) < 8:
            raise ViewError("a token needs at least 8 characters")
        self.path = os.fspath(path)
        self.address = address
        self.token = token
        app = make_application(self.path, code_names, derive, poll_ms)
        # signed session ids: a websocket client cannot make up a session the server never handed out
        kwargs: dict[str, Any] = dict(address=address, sign_sessions=True, secret_key=secrets.token_bytes(32),
                                      **server_kwargs)
        if token:
            kwargs["auth_provider"] = TokenAuth(token)
        for attempt in range(20):  # port 0: the origin allow-list needs the port before Bokeh binds it
            p = port or _free_port(address)
            origins = ["*"] if not is_loopback(address) else [f"localhost:{p}", f"127.0.0.1:{p}"]
            try:
                self.server = Server({"/": app}, port=p, allow_websocket_origin=origins, **kwargs)
                break
            except OSError as exc:
                if port or exc.errno != errno.EADDRINUSE or attempt == 19:
                    raise
        self.server.start()
        self.port = self.server.port

    @property
    def url(self) -> str:
        host = self.address
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def run(self) -> None:
        """Serve until :meth:`stop` (or Ctrl-C)."""
        self.server.io_loop.start()

    def stop(self) -> None:
        self.server.io_loop.add_callback(self._stop)

    def _stop(self) -> None:
        self.server.stop()
        self.server.io_loop.stop()
