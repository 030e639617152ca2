"""`amc-tui serve`: the same Textual app in a browser, one app process per visitor.

This module holds what must be checked before anything listens (host, token, token file) and
the command's output. It imports little (socket and friends only when serving) because the CLI
parser imports it on every command; the web server itself (aiohttp, textual-serve) lives in
amc_tui.serve.server.

Why a token even on loopback: any local user (or a web page, via the browser) can reach
127.0.0.1, and the app can start and stop runs. The token travels once as `?token=` and then
as an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import secrets
import socket
import stat
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from amc_tui.errors import UserError
from amc_tui.serve.server import serve
from amc_tui.workspace import Workspace

TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_.~")
MIN_TOKEN_LEN = 22  # 22 URL-safe base64 characters carry 132 bits


@dataclass(frozen=True)
class ServeOptions:
    """Validated `serve` arguments; `token` is None only with --no-token on loopback."""

    host: str
    port: int
    token: str | None


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback IP literals; any other name counts as remote."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """256 random bits, URL- and cookie-safe."""

    return secrets.token_urlsafe(32)


def read_token_file(path: Path) -> str:
    """The token in FILE, which only its owner may read or write."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read token file {path}: {e.strerror or e}") from None
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        raise UserError(
            f"token file {path} is open to group/others (mode {mode:04o}); run chmod 600 {path}"
        )
    token = text.strip()
    if len(token) < MIN_TOKEN_LEN or "\n" in token or not set(token) <= TOKEN_CHARS:
        raise UserError(
            f"token file {path} must hold one line of at least {MIN_TOKEN_LEN} characters "
            "from A-Z a-z 0-9 - _ . ~ (python -c 'import secrets; print(secrets.token_urlsafe())')"
        )
    return token


def check_options(args: argparse.Namespace) -> ServeOptions:
    """Refuse unsafe combinations before anything listens."""
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a TCP port (0-65535)")
    loopback = is_loopback(args.host)
    if not loopback and not args.allow_remote:
        raise UserError(
            f"--host {args.host} is not loopback; use ssh -L (see README) or add --allow-remote"
        )
    if args.no_token and args.token_file:
        raise UserError("--no-token and --token-file exclude each other")
    if args.no_token and not loopback:
        raise UserError(f"--no-token is refused on a non-loopback host ({args.host})")
    if args.no_token:
        token = None
    elif args.token_file:
        token = read_token_file(Path(args.token_file).expanduser())
    else:
        token = new_token()
    return ServeOptions(args.host, args.port, token)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def banner(opts: ServeOptions, port: int, ws: Workspace) -> list[str]:
    """What `serve` prints once it listens: the URL (with the token) and how to tunnel to it."""

    shown = opts.host
    if not is_loopback(shown) and shown in ("0.0.0.0", "::", ""):
        shown = socket.gethostname()
    url = f"http://{_url_host(shown)}:{port}/"
    if opts.token is not None:
        url += f"?token={quote(opts.token, safe='')}"
    lines = [f"amc-tui serving {ws.root} at {url}"]
    if is_loopback(opts.host):
        target = f"{_url_host(opts.host)}:{port}"
        lines.append(
            f"from another machine: ssh -L {port}:{target} "
            f"{getpass.getuser()}@{socket.gethostname()} and open the URL there"
        )
    lines.append("Ctrl-C stops the server and every app it started")
    return lines


def cmd_serve(args: argparse.Namespace, ws: Workspace) -> int:
    opts = check_options(args)
    if opts.token is None:
        print(
            "amc-tui: warning: --no-token: any local user can open the app and start or stop runs",
            file=sys.stderr,
        )

    app_argv = [sys.executable, "-m", "amc_tui.cli", "--workspace", str(ws.root), "tui"]

    def announce(port: int) -> None:
        print("\n".join(banner(opts, port, ws)), flush=True)

    return serve(opts.host, opts.port, opts.token, app_argv, announce)
