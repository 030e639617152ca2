"""The workspace settings file `amc-tui.toml` (at the workspace root) and its `[notify]` table.

Why a file of its own, not a config key: notifications are the workspace's (who is told,
where), not a run's; every amc-tui process that can see a run end reads the same file.
No file means nothing is configured, and costs one stat. Unknown tables, keys and event
names are errors naming the nearest valid one (`notify test` exits 2 on them; an observer
records the error once instead of sending, and never fails a run or the app).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amc_tui.errors import UserError

SETTINGS_FILE = "amc-tui.toml"

RUN_END = ("completed", "failed", "crashed", "stopped")
HEALTH_RULES = ("learned-nothing", "diverged", "plateau", "overfitting", "data-bound")
GROUP_EVENTS = ("group-done", "group-best")
EVENTS = (*RUN_END, "stalled", *HEALTH_RULES, *GROUP_EVENTS)
# names for several events at once
ALIASES: dict[str, tuple[str, ...]] = {
    "ended": RUN_END,
    "health": HEALTH_RULES,
    "all": EVENTS,
}
DEFAULT_ON = ("ended", "stalled", "health", "group-done")
NOTIFY_KEYS = ("urls", "on")


class SettingsError(UserError):
    """amc-tui.toml cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class NotifySettings:
    """`urls`: apprise URLs, each sent to separately; `on`: the events notified."""

    urls: tuple[str, ...]
    on: frozenset[str]
    written_at: float | None = None  # the file's mtime: when notifications were configured

    def wants(self, event: str) -> bool:
        return bool(self.urls) and event in self.on


def settings_path(root: str | os.PathLike[str]) -> Path:
    return Path(root) / SETTINGS_FILE


def _nearest(word: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse(text: str, where: str = SETTINGS_FILE) -> NotifySettings:
    """The `[notify]` table of the file's text; SettingsError on anything unknown or wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{where}: {e}") from None
    for table in raw:
        if table != "notify":
            raise SettingsError(f"{where}: unknown table [{table}]{_nearest(table, ('notify',))}")
    table = raw.get("notify", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{where}: notify must be a table ([notify])")
    for key in table:
        if key not in NOTIFY_KEYS:
            raise SettingsError(f"{where}: unknown key notify.{key}{_nearest(key, NOTIFY_KEYS)}")
    urls = _strings(table.get("urls", []), "notify.urls", where)
    for url in urls:
        if "://" not in url:
            raise SettingsError(f"{where}: notify.urls: {url!r} is not a URL (scheme://...)")
    return NotifySettings(tuple(urls), _events(table.get("on", list(DEFAULT_ON)), where))


def _strings(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SettingsError(f"{where}: {key} must be a list of non-empty strings")
    return [v.strip() for v in value]


def _events(value: Any, where: str) -> frozenset[str]:
    out: set[str] = set()
    names = (*EVENTS, *ALIASES)
    for name in _strings(value, "notify.on", where):
        if name in ALIASES:
            out.update(ALIASES[name])
        elif name in EVENTS:
            out.add(name)
        else:
            raise SettingsError(
                f"{where}: notify.on: unknown event {name!r}{_nearest(name, names)}; "
                f"events: {', '.join(names)}"
            )
    return frozenset(out)


_cache: dict[Path, tuple[tuple[int, int, int], NotifySettings | SettingsError]] = {}


def load(root: str | os.PathLike[str]) -> NotifySettings | None:
    """The workspace's settings, None when there is no amc-tui.toml (one stat); re-read only
    when the file changed. Raises SettingsError for a bad file."""
    path = settings_path(root)
    try:
        st = path.stat()
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _cache.get(path)
    if hit is None or hit[0] != stamp:
        try:
            got: NotifySettings | SettingsError = dataclasses.replace(
                parse(path.read_text(encoding="utf-8"), str(path)), written_at=st.st_mtime
            )
        except SettingsError as e:
            got = e
        except (OSError, UnicodeDecodeError) as e:
            got = SettingsError(f"{path}: cannot be read ({e})")
        hit = (stamp, got)
        _cache[path] = hit
    if isinstance(hit[1], SettingsError):
        raise hit[1]
    return hit[1]
