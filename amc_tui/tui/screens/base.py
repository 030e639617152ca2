"""The app's screen bases: `AmcScreen` (every screen reaches the app's services through its
typed `amc`), `TabbedScreen` (a screen of tabs: Analysis, Compare) and `PollingScreen`, a
screen that polls files off the UI thread.

The poll is a one-shot timer re-armed only after the previous result has been applied, so a
slow disk never stacks polls; a screen under another one stops polling until it is shown
again. Results come back as messages posted from the worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import TabbedContent

if TYPE_CHECKING:
    from amc_tui.tui.app import AmcApp


class AmcScreen(Screen):
    """A screen of this app: `amc` is `self.app` typed as AmcApp (workspace, clock, run
    actions, navigation), so screens need no cast of their own."""

    @property
    def amc(self) -> AmcApp:
        return self.app  # type: ignore[return-value]


class TabbedScreen(AmcScreen):
    """A screen whose content sits in one TabbedContent: `next_tab` (the `t` key) cycles the
    tabs in `TABS` order, and a tab once shown gives its keys to its content (arrows move a
    table's or heatmap's cursor, not the tab bar)."""

    TABS_ID: ClassVar[str]  # the TabbedContent's id
    TABS: ClassVar[tuple[str, ...]]  # pane ids, in `t` order
    TAB_FOCUS: ClassVar[dict[str, str]] = {}  # pane id -> the widget that takes the keys there

    def action_next_tab(self) -> None:
        tabs = self.query_one(f"#{self.TABS_ID}", TabbedContent)
        i = self.TABS.index(tabs.active) if tabs.active in self.TABS else 0
        tabs.active = self.TABS[(i + 1) % len(self.TABS)]

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.tabbed_content.id != self.TABS_ID:
            return
        target = self.TAB_FOCUS.get(event.pane.id or "")
        if target:
            self.query_one(target).focus()

    def action_back(self) -> None:
        self.app.pop_screen()


class PollingScreen(AmcScreen):
    """Subclasses implement `start_poll()` (which starts a thread worker) and call
    `poll_done()` from the handler of the worker's message."""

    POLL_S = 1.0

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._timer: Timer | None = None
        self._polling = False
        self._active = False

    def poll_interval(self) -> float:
        return self.POLL_S

    def on_screen_resume(self) -> None:
        self._active = True
        self.poll_now()

    def on_screen_suspend(self) -> None:
        self._active = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def poll_now(self) -> None:
        """Start a poll unless one is in flight (its completion re-arms the timer)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._polling or not self._active:
            return
        self._polling = True
        try:
            self.start_poll()
        except Exception as e:  # noqa: BLE001 - a poll must never take the app down
            self._polling = False
            self.amc.report_error(f"poll failed: {e}")

    def poll_done(self) -> None:
        """Call after applying a poll's result: arms the next poll."""
        self._polling = False
        if self._active and self.is_attached:
            self._timer = self.set_timer(self.poll_interval(), self.poll_now)

    def start_poll(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
