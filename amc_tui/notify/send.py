"""Sending one message through apprise, one URL at a time, so each URL's answer is known.

Timeouts are short (connect 3 s, read 5 s, unless the URL sets `cto`/`rto`) and apprise does
not retry by default: a dead endpoint costs an observer seconds, never a run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 5.0
KINDS = ("info", "success", "warning", "failure")
_lock = threading.Lock()  # apprise's log capture is process-wide: one send at a time


@dataclass(frozen=True)
class Answer:
    """What one URL answered: `url` with its secrets masked."""

    url: str
    ok: bool
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def send(
    urls: tuple[str, ...] | list[str], title: str, body: str, kind: str = "info"
) -> list[Answer]:
    """Send `title`/`body` to every URL; never raises."""
    import apprise  # ~0.1-0.3 s, 260 modules (requests, yaml, markdown): only senders pay

    notify_type = {
        "info": apprise.NotifyType.INFO,
        "success": apprise.NotifyType.SUCCESS,
        "warning": apprise.NotifyType.WARNING,
        "failure": apprise.NotifyType.FAILURE,
    }.get(kind, apprise.NotifyType.INFO)
    out = []
    with _lock:
        for url in urls:
            out.append(_send_one(apprise, url, title, body, notify_type))
    return out


def _send_one(apprise: Any, url: str, title: str, body: str, notify_type: Any) -> Answer:
    a = apprise.Apprise()
    try:
        added = a.add(url)
    except Exception as e:  # noqa: BLE001 - a URL apprise chokes on is that URL's answer
        return Answer(_masked_raw(url), False, f"bad URL: {e}")
    if not added or len(a) == 0:
        return Answer(_masked_raw(url), False, "not a URL apprise knows (check its scheme)")
    plugin = a[0]
    masked = plugin.url(privacy=True).split("?", 1)[0]
    if "cto=" not in url:
        plugin.socket_connect_timeout = CONNECT_TIMEOUT_S
    if "rto=" not in url:
        plugin.socket_read_timeout = READ_TIMEOUT_S
    logger = logging.getLogger("apprise")
    propagate, logger.propagate = logger.propagate, False  # its debug lines: not in train.log
    try:
        with apprise.LogCapture(level=logging.DEBUG) as captured:
            ok = bool(a.notify(title=title, body=body, notify_type=notify_type))
        log = captured.getvalue()
    except Exception as e:  # noqa: BLE001 - a plugin's bug is a failed send, never a crash
        return Answer(masked, False, f"{type(e).__name__}: {e}")
    finally:
        logger.propagate = propagate
    return Answer(masked, True) if ok else Answer(masked, False, _why(log))


def _why(log: str) -> str:
    """The lines of apprise's log that say what went wrong (warnings, errors, the socket
    exception), one line."""
    keep = []
    for line in log.splitlines():
        parts = line.split(" - ", 2)
        if len(parts) < 3:
            continue
        level, text = parts[1], parts[2].strip()
        if level in ("WARNING", "ERROR", "CRITICAL") or "Exception:" in text:
            keep.append(text)
    return " ".join(keep)[:500] or "the service did not accept it"


def _masked_raw(url: str) -> str:
    """A URL apprise could not parse, with anything between :// and @ hidden."""
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "****@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest.split('?', 1)[0]}"
