"""`amc-tui serve` against a real server process on a loopback port, with aiohttp's client.

Every test waits on a condition (the port answers, a child appears or goes) with a bound;
app processes are found as the server's children with psutil.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import psutil
import pytest

from amc_tui.errors import UserError
from amc_tui.serve.command import check_options, is_loopback

REPO = Path(__file__).resolve().parents[1]
START_S = 60.0  # two shared cores: an import-heavy start can be slow, never this slow
TOKEN = "t0k3n-for-tests_" + "x" * 24


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class ServerProc:
    """`python -m amc_tui.cli serve` with its output collected by reader threads."""

    def __init__(self, ws: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        argv = [sys.executable, "-m", "amc_tui.cli", "-w", str(ws), "serve"]
        self.proc = subprocess.Popen(
            [*argv, "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or _env(),
        )  # fmt: skip
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=lambda s=stream, k=sink: k.extend(s), daemon=True)
            for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    def wait_ready(self) -> ServerProc:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}: {self.err}")
            return port_open(self.port) and len(self.out) >= 1

        wait_for(ready, START_S, "the server to listen")
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def apps(self) -> list[psutil.Process]:
        """The app processes this server started (its children running `amc_tui.cli ... tui`)."""
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        found = []
        for p in kids:
            try:
                if p.cmdline()[-1:] == ["tui"]:
                    found.append(p)
            except psutil.Error:
                pass
        return found

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=START_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=START_S)
            raise AssertionError("server did not stop on SIGTERM") from None
        for reader in self.readers:  # every line it wrote, read
            reader.join(START_S)
        return rc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """One token-file server shared by the request-level tests (starting one costs seconds)."""
    root = tmp_path_factory.mktemp("serve")
    for sub in ("configs", "runs", "data"):
        (root / sub).mkdir()
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    srv = ServerProc(root, "--token-file", str(token_file)).wait_ready()
    yield srv
    srv.stop()


def session() -> aiohttp.ClientSession:
    # unsafe=True: the default jar refuses cookies from IP-address hosts such as 127.0.0.1
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=START_S)
    )


async def _status(s: aiohttp.ClientSession, url: str) -> int:
    async with s.get(url, allow_redirects=False) as r:
        return r.status


async def _ws_status(s: aiohttp.ClientSession, url: str, **kw: object) -> int:
    try:
        async with s.ws_connect(url, **kw):
            return 101
    except aiohttp.WSServerHandshakeError as e:
        return e.status


async def _login(s: aiohttp.ClientSession, base: str) -> aiohttp.ClientResponse:
    async with s.get(f"{base}/?token={TOKEN}&fontsize=14") as r:
        await r.read()
        return r


def _screen_text(frames: bytes) -> str:
    """The visible text of the app's output: escape sequences dropped."""
    return re.sub(
        r"\x1b(\[[0-9;?$]*[a-zA-Z]|\][^\x07]*\x07)", "", frames.decode("utf-8", "replace")
    )


async def _first_screen(
    s: aiohttp.ClientSession, base: str, while_open: Callable[[Any], Awaitable[None]]
) -> str:
    """Open the websocket, send a resize as the browser does, read until the runs table shows,
    then run `while_open(ws)` before disconnecting."""
    async with s.ws_connect(f"{base}/ws", origin=base) as ws:
        await ws.send_json(["resize", {"width": 100, "height": 30}])
        frames = b""
        deadline = time.monotonic() + START_S
        while "name state" not in _screen_text(frames) and time.monotonic() < deadline:
            msg = await ws.receive(timeout=START_S)
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            frames += msg.data
        await while_open(ws)
        return _screen_text(frames)


# --------------------------------------------------------------------------- access control


def test_no_token_is_403_and_starts_no_app(server: ServerProc) -> None:
    async def go() -> list[int]:
        async with session() as s:
            return [
                await _status(s, f"{server.base}/"),
                await _status(s, f"{server.base}/static/js/textual.js"),
                await _status(s, f"{server.base}/download/x"),
                await _ws_status(s, f"{server.base}/ws", origin=server.base),
            ]

    assert asyncio.run(go()) == [403, 403, 403, 403]
    assert server.apps() == []


def test_wrong_token_is_403(server: ServerProc) -> None:
    async def go() -> list[int]:
        async with session() as s:
            got = [
                await _status(s, f"{server.base}/?token=wrong"),
                await _status(s, f"{server.base}/?token={TOKEN}x"),
                await _ws_status(s, f"{server.base}/ws?token=wrong", origin=server.base),
            ]
            s.cookie_jar.update_cookies({f"amc_tui_token_{server.port}": "wrong"})
            got += [
                await _status(s, f"{server.base}/"),
                await _ws_status(s, f"{server.base}/ws", origin=server.base),
            ]
            return got

    assert asyncio.run(go()) == [403, 403, 403, 403, 403]
    assert server.apps() == []


def test_right_token_sets_a_strict_httponly_cookie_and_serves_the_page(server: ServerProc) -> None:
    async def go() -> tuple[aiohttp.ClientResponse, str, int]:
        async with session() as s:
            r = await _login(s, server.base)
            async with s.get(f"{server.base}/") as again:  # the cookie alone is enough now
                body = await again.text()
            return r, body, await _status(s, f"{server.base}/static/js/textual.js")

    r, body, static = asyncio.run(go())
    assert r.status == 200 and static == 200
    (first,) = r.history
    assert first.status == 303 and TOKEN not in first.headers["Location"]
    assert first.headers["Location"] == "/?fontsize=14"
    cookie = first.headers["Set-Cookie"]
    assert cookie.startswith(f"amc_tui_token_{server.port}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert f'data-session-websocket-url="ws://127.0.0.1:{server.port}/ws"' in body
    assert TOKEN not in body


def test_cross_origin_websocket_is_refused_even_with_the_cookie(server: ServerProc) -> None:
    async def go() -> int:
        async with session() as s:
            await _login(s, server.base)
            return await _ws_status(s, f"{server.base}/ws", origin="http://evil.example")

    assert asyncio.run(go()) == 403
    assert server.apps() == []


def test_websocket_with_cookie_shows_the_runs_screen_and_its_app_ends_with_it(
    server: ServerProc,
) -> None:
    seen: list[list[psutil.Process]] = []

    async def look(ws: Any) -> None:
        seen.append(server.apps())

    async def go() -> str:
        async with session() as s:
            await _login(s, server.base)
            return await _first_screen(s, server.base, look)

    text = asyncio.run(go())
    assert "amc-tui" in text and "name state" in text and "0 runs" in text
    (app,) = seen[0]
    # is_running() stays true while the server has yet to reap it (a zombie)
    wait_for(lambda: not app.is_running(), START_S, "the app process to end after disconnect")
    assert server.apps() == []


# --------------------------------------------------------------------------- start and stop


def test_printed_url_logs_and_sigterm_leave_no_app_behind(workspace: Path) -> None:
    srv = ServerProc(workspace).wait_ready()
    try:
        wait_for(lambda: len(srv.out) >= 2, START_S, "the banner")
        url_line, ssh_line = srv.out[0], srv.out[1]
        token = re.search(r"\?token=([\w.~-]+)$", url_line.strip()).group(1)
        assert len(token) >= 43  # 256 bits in URL-safe base64
        assert f"ssh -L {srv.port}:127.0.0.1:{srv.port} " in ssh_line
        apps: list[psutil.Process] = []
        closed: list[aiohttp.WSMsgType] = []

        async def terminate(ws: Any) -> None:
            """SIGTERM while the visitor is connected; the server closes the socket."""
            apps.extend(srv.apps())
            srv.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + START_S
            while not closed and time.monotonic() < deadline:
                msg = await ws.receive(timeout=START_S)
                if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    closed.append(msg.type)

        async def go() -> None:
            async with session() as s:
                async with s.get(f"{srv.base}/?token={token}") as r:
                    assert r.status == 200
                await _first_screen(s, srv.base, terminate)

        asyncio.run(go())
    finally:
        rc = srv.stop()
    assert rc == 0 and len(apps) == 1 and closed
    wait_for(lambda: not any(p.is_running() for p in apps), START_S, "the app to be gone")
    log = "".join(srv.out + srv.err)
    assert log.count(token) == 1  # in the URL line only, never in a log line


# asyncio's default child watcher on Python < 3.12 (ThreadedChildWatcher) reaps each child
# in a thread blocked in waitpid(pid, 0). On a loaded machine that thread can take a while to
# run once the child has exited; this makes it always late, so any other waitpid on the app
# (asyncio's Process.send_signal goes through Popen.poll on Python < 3.13) reaps it first.
LATE_WATCHER = """\
import os, threading, time
_late = float(os.environ.get("AMC_TEST_LATE_WATCHER") or 0)
if _late:
    _waitpid = os.waitpid

    def waitpid(pid, options):
        if options == 0 and threading.current_thread().name.startswith("asyncio-waitpid"):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
            time.sleep(_late)
        return _waitpid(pid, options)

    os.waitpid = waitpid
"""


def test_sigterm_with_an_app_connected_is_quiet_even_with_a_late_child_watcher(
    workspace: Path, tmp_path: Path
) -> None:
    """SIGTERM while a visitor's app runs: the app is asked to quit, exits, and is reaped once,
    by asyncio's child watcher; stderr has no "Unknown child process pid N, will report
    returncode 255" (the server had reaped it first, signalling an app that was exiting)."""
    from amc_tui.serve.server import QUIT_GRACE_S

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(LATE_WATCHER)
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    env["AMC_TEST_LATE_WATCHER"] = str(QUIT_GRACE_S + 1)  # later than the server's grace
    srv = ServerProc(workspace, "--no-token", env=env).wait_ready()
    apps: list[psutil.Process] = []

    async def terminate(ws: Any) -> None:
        apps.extend(srv.apps())
        srv.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(Exception):
            while (await ws.receive(timeout=START_S)).type in (
                aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):  # fmt: skip
                pass

    async def go() -> str:
        async with session() as s:
            return await _first_screen(s, srv.base, terminate)

    try:
        assert "name state" in asyncio.run(go())
    finally:
        rc = srv.stop()
    err = "".join(srv.err)
    assert rc == 0 and len(apps) == 1, err
    assert "Unknown child process" not in err and "returncode 255" not in err, err
    wait_for(lambda: not any(p.is_running() for p in apps), START_S, "the app to be gone")


def test_no_token_on_loopback_warns_and_serves(workspace: Path) -> None:
    srv = ServerProc(workspace, "--no-token").wait_ready()
    try:
        wait_for(lambda: srv.err, START_S, "the warning")
        assert "warning: --no-token" in srv.err[0]

        async def go() -> int:
            async with session() as s:
                return await _status(s, f"{srv.base}/")

        assert asyncio.run(go()) == 200
        assert "token=" not in srv.out[0]
    finally:
        assert srv.stop() == 0


def _serve_fails(ws: Path, *args: str) -> str:
    """Run `serve` expecting exit 2 and a single line on stderr; return that line."""
    p = subprocess.run(
        [sys.executable, "-m", "amc_tui.cli", "-w", str(ws), "serve", *args],
        capture_output=True, text=True, env=_env(), timeout=START_S,
    )  # fmt: skip
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "" and p.stderr.count("\n") == 1, p.stderr
    return p.stderr


def test_token_file_readable_by_others_is_refused(workspace: Path) -> None:
    f = workspace / "token"
    f.write_text(TOKEN)
    f.chmod(0o644)
    line = _serve_fails(workspace, "--port", str(free_port()), "--token-file", str(f))
    assert "mode 0644" in line and "chmod 600" in line and TOKEN not in line


@pytest.mark.parametrize(
    "args",
    [["--host", "0.0.0.0"], ["--host", "0.0.0.0", "--allow-remote", "--no-token"]],
)
def test_remote_host_is_refused(workspace: Path, args: list[str]) -> None:
    assert "0.0.0.0" in _serve_fails(workspace, "--port", str(free_port()), *args)


def test_port_in_use_is_one_line_exit_2(workspace: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _serve_fails(workspace, "--port", str(port))
    assert f"127.0.0.1:{port}" in line and "in use" in line


def test_an_app_that_ignores_quit_and_sigterm_is_killed(tmp_path: Path) -> None:
    from textual_serve.download_manager import DownloadManager

    from amc_tui.serve.server import AppProcess

    armed = tmp_path / "armed"
    stubborn = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(armed)!r}).touch(); time.sleep(120)"
    )

    async def nothing(*_: object) -> None:
        return None

    async def go() -> tuple[int | None, int]:
        live: set[AppProcess] = set()
        app = AppProcess(
            [sys.executable, "-c", stubborn], live, write_bytes=nothing, write_str=nothing,
            close=nothing, download_manager=DownloadManager(),
        )  # fmt: skip
        app.grace = 0.3
        await app.start(80, 24)
        deadline = time.monotonic() + START_S
        while not armed.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await app.stop()
        return app._process.returncode, len(live)

    assert asyncio.run(go()) == (-signal.SIGKILL, 0)


# --------------------------------------------------------------------------- option rules


def _opts(**kw: object) -> SimpleNamespace:
    base = {"host": "127.0.0.1", "port": 8000, "token_file": None, "allow_remote": False,
            "no_token": False}  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def test_loopback_rules() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org"]))
    assert check_options(_opts(host="0.0.0.0", allow_remote=True)).token
    assert check_options(_opts(no_token=True)).token is None
    for bad in (_opts(host="10.0.0.1"), _opts(host="::", allow_remote=True, no_token=True),
                _opts(port=70000)):  # fmt: skip
        with pytest.raises(UserError):
            check_options(bad)


def test_token_file_content_rules(tmp_path: Path) -> None:
    f = tmp_path / "token"
    for content in ("short", "has space " * 4, TOKEN + "\n" + TOKEN):
        f.write_text(content)
        f.chmod(0o600)
        with pytest.raises(UserError, match="one line"):
            check_options(_opts(token_file=str(f)))
    f.write_text(f"  {TOKEN}\n")
    assert check_options(_opts(token_file=str(f))).token == TOKEN
