"""`amc-tui notify test`: one message to every URL of amc-tui.toml, and what each answered."""

from __future__ import annotations

import argparse
import socket

from amc_tui.notify import settings
from amc_tui.notify.send import send
from amc_tui.workspace import Workspace


def cmd_notify_test(args: argparse.Namespace, ws: Workspace) -> int:
    """Exit 0 when every URL took the message, 1 when one did not, 2 for a missing or bad
    settings file (UserError)."""
    path = settings.settings_path(ws.root)
    conf = settings.load(ws.root)
    if conf is None:
        raise settings.SettingsError(
            f'{path} does not exist; write [notify] urls = ["..."] there (docs/ALERTS.md)'
        )
    if not conf.urls:
        raise settings.SettingsError(f"{path}: notify.urls is empty: nothing to send to")
    host = socket.gethostname()
    body = (
        f"test message from amc-tui on {host}, workspace {ws.root}\n"
        f"notified: {', '.join(e for e in settings.EVENTS if e in conf.on) or 'nothing'}"
    )
    answers = send(conf.urls, "amc-tui: test", body, "info")
    for a in answers:
        print(f"{a.url}: {'ok' if a.ok else a.error}")
    failed = sum(not a.ok for a in answers)
    print(f"{len(answers) - failed} of {len(answers)} URLs took the message")
    return 1 if failed else 0
