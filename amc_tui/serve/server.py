"""The web side of `amc-tui serve`: textual-serve's page and websocket behind a token.

textual-serve's Server gives the page, the static files and the websocket protocol; this
module adds what it leaves out: a token check in front of every route (so an unauthenticated
request never reaches the websocket handler that spawns an app process), an access log that
never sees the token, app processes started without a shell and always reaped (quit, then
SIGTERM, then SIGKILL), and a clean one-line error when the port is taken.

An app process is reaped by asyncio's child watcher alone, so the server signals it without
asyncio's `Process.send_signal`: before Python 3.13 that goes through `Popen.send_signal`,
whose `poll()` calls waitpid and reaps an app that has just exited before the watcher thread
does; the watcher then logs "Unknown child process pid N, will report returncode 255"
(CPython gh-87744). Signals go through a pidfd opened at spawn (never to a reused pid; a kill
by pid where there is none), and an app that was asked to quit and closed its output gets the
grace to exit on its own before any signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import hmac
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from amc_tui.errors import UserError

QUIT_GRACE_S = 3.0  # an app asked to quit gets this long before SIGTERM, then as long again
SHUTDOWN_TIMEOUT_S = 8.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Redact(logging.Filter):
    """Replaces the token in any log record of the web stack (defence in depth)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.token in msg:
            record.msg, record.args = msg.replace(self.token, "<token>"), None
        return True


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if the server dies without cleaning up."""
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class AppProcess(AppService):
    """One visitor's app: spawned from an argv (no shell), stopped within a bounded time."""

    grace = QUIT_GRACE_S

    def __init__(self, argv: Sequence[str], live: set[AppProcess], **kw: Any) -> None:
        super().__init__(" ".join(argv), **kw)
        self.argv = list(argv)
        self.live = live
        self._pidfd: int | None = None  # the app's pidfd (Linux), closed once it is reaped

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
            start_new_session=True,  # Ctrl-C reaches the server, which stops apps in order
            preexec_fn=_die_with_parent,
        )
        self._stdin = process.stdin
        with contextlib.suppress(AttributeError, OSError):  # no pidfd: signals go by pid
            self._pidfd = os.pidfd_open(process.pid)
        self.live.add(self)
        return process

    async def stop(self) -> None:
        """Ask the app to quit; terminate, then kill, what does not. Safe to call twice."""
        task = self._task
        if task is not None:
            with contextlib.suppress(Exception):  # whatever the pipe or app did, still reap
                await self._download_manager.cancel_app_downloads(
                    app_service_id=self.app_service_id
                )
                await self.send_meta({"type": "quit"})
                await asyncio.wait_for(asyncio.shield(task), self.grace)
            if task.done():  # it closed its output: it is exiting, let the watcher reap it
                await self._exited(self.grace)
        await self.reap()
        if task is not None and task.done():
            self._task = None

    async def reap(self) -> None:
        """SIGTERM, then SIGKILL, each followed by the grace, until the app has exited."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if await self._exited(0):
                break
            self._signal(sig)
            await self._exited(self.grace)
        if await self._exited(0):
            self.live.discard(self)
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    async def _exited(self, timeout: float) -> bool:
        """Whether the app has exited (as asyncio's child watcher reports), waiting up to
        `timeout` seconds for it."""
        process = self._process
        if process is None or process.returncode is not None:
            return True
        if timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout)
        return process.returncode is not None

    def _signal(self, sig: int) -> None:
        """Signal the app without reaping it (see the module docstring)."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            else:
                os.kill(process.pid, sig)


def auth_middleware(token: str | None, cookie_name: Callable[[], str]) -> Any:
    """403 for any request without the token, before routing; ?token= sets the cookie.

    `cookie_name` is read per request: with --port 0 the port, part of the name, is known
    only once bound.
    """

    def matches(value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), (token or "").encode())

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        origin = request.headers.get("Origin")
        if is_ws and origin and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="forbidden: cross-origin websocket\n")
        if token is not None:
            cookie = cookie_name()
            given = request.query.get("token")
            if given is not None:
                if not matches(given):
                    raise web.HTTPForbidden(text="forbidden: wrong token\n")
                if not is_ws:  # drop the token from the address bar and history
                    query = {k: v for k, v in request.query.items() if k != "token"}
                    redirect = web.HTTPSeeOther(request.rel_url.with_query(query))
                    redirect.set_cookie(cookie, token, httponly=True, samesite="Strict", path="/")
                    raise redirect
            elif not matches(request.cookies.get(cookie)):
                raise web.HTTPForbidden(text="forbidden: open the URL with ?token= first\n")
        response = await handler(request)
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return check


class AmcServer(Server):
    """textual-serve's Server with the token check and app processes that never outlive it."""

    def __init__(self, argv: Sequence[str], token: str | None, port: int) -> None:
        super().__init__(" ".join(argv), host="127.0.0.1", port=port, title="amc-tui")
        self.argv = list(argv)
        self.token = token
        self.cookie = f"amc_tui_token_{port}"  # cookies ignore ports: one name per server
        self.live: set[AppProcess] = set()
        self.sockets: set[web.WebSocketResponse] = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(auth_middleware(self.token, lambda: self.cookie))
        return app

    async def on_startup(self, app: web.Application) -> None:
        """The command prints its own banner once the port is bound."""

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        """The page, with URLs for the host the browser used (an ssh -L port may differ).

        Setting the attribute is race-free: the parent builds its URLs before its first await.
        """
        self.public_url = f"{request.scheme}://{request.host}"
        response = await super().handle_index(request)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One app process for this connection, stopped when the connection ends."""
        websocket = web.WebSocketResponse(heartbeat=15, timeout=2.0)
        service: AppProcess | None = None
        await websocket.prepare(request)
        self.sockets.add(websocket)
        try:
            service = AppProcess(
                self.argv,
                self.live,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
            )
            await service.start(
                to_int(request.query.get("width", "80"), 80),
                to_int(request.query.get("height", "24"), 24),
            )
            await self._process_messages(websocket, service)
        except (asyncio.CancelledError, ConnectionResetError):
            pass
        except Exception:  # a broken client must not take the server down
            logging.getLogger("amc-tui.serve").exception("websocket session failed")
        finally:
            self.sockets.discard(websocket)
            if service is not None:
                await service.stop()
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    async def on_shutdown(self, app: web.Application) -> None:
        """Stop every app, then close every websocket; handlers then return promptly."""
        await self.stop_all()
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"server stopped")

    async def stop_all(self) -> None:
        await asyncio.gather(*(p.stop() for p in list(self.live)), return_exceptions=True)


async def _run(server: AmcServer, host: str, port: int, announce: Callable[[int], None]) -> None:
    app = await server._make_app()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as e:
            why = "address already in use" if e.errno == errno.EADDRINUSE else (e.strerror or e)
            raise UserError(f"cannot listen on {host}:{port}: {why}") from None
        bound = next((a[1] for a in runner.addresses if isinstance(a, tuple)), port)
        server.cookie = f"amc_tui_token_{bound}"
        announce(bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        await server.stop_all()


def serve(
    host: str,
    port: int,
    token: str | None,
    app_argv: Sequence[str],
    announce: Callable[[int], None],
) -> int:
    """Listen until SIGINT/SIGTERM/SIGHUP; 0 after a clean stop with no app process left."""
    if token is not None:
        redact = _Redact(token)
        for name in ("aiohttp.access", "aiohttp.server", "aiohttp.web", "textual-serve"):
            logging.getLogger(name).addFilter(redact)
    asyncio.run(_run(AmcServer(app_argv, token, port), host, port, announce))
    return 0
