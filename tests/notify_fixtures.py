"""A real local HTTP receiver for apprise's `json://` URLs, and amc-tui.toml writers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Hook:
    """The bodies POSTed to the server, parsed, with the path each came to."""

    port: int
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def got(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.bodies)

    def titled(self, text: str) -> list[dict[str, Any]]:
        return [b for b in self.got() if text in b.get("title", "")]


@contextlib.contextmanager
def hook_server() -> Iterator[Hook]:
    hook = Hook(0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hook.lock:
                hook.bodies.append({"path": self.path, **json.loads(raw)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then closed): a connection there is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(root: Path, urls: list[str], on: list[str] | None = None) -> Path:
    path = root / "amc-tui.toml"
    lines = ["[notify]", f"urls = {json.dumps(urls)}"]
    if on is not None:
        lines.append(f"on = {json.dumps(on)}")
    path.write_text("\n".join(lines) + "\n")
    return path
