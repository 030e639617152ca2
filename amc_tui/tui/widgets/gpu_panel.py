"""One GPU as a card: util / memory / temperature / power sparklines with current values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from amc_tui import contract, report

# field, label, unit
ROWS = (
    ("util", "util", "%"),
    ("mem", "mem", "%"),
    ("temp_c", "temp", "°C"),
    ("power_w", "power", "W"),
)


class GpuCard(Vertical):
    """Title line plus four labelled sparklines."""

    DEFAULT_CSS = """
    GpuCard { height: auto; border: round $primary 50%; padding: 0 1; }
    GpuCard .gpu-title { width: 1fr; text-style: bold; }
    GpuCard .gpu-holder { width: 1fr; color: $text-muted; }
    GpuCard Horizontal { height: 1; }
    GpuCard .gpu-label { width: 14; }
    GpuCard Sparkline { width: 1fr; height: 1; }
    """

    def __init__(self, index: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = index

    def compose(self) -> ComposeResult:
        yield Static(f"GPU {self.index}", classes="gpu-title")
        yield Static("", classes="gpu-holder")
        for key, label, _ in ROWS:
            with Horizontal():
                yield Label(f"{label:>5} N/A", classes="gpu-label", id=f"lbl-{key}")
                yield Sparkline([], id=f"spk-{key}")

    def update_card(
        self,
        title: str,
        holder: str,
        history: dict[str, Sequence[float]],
        latest: dict[str, Any],
    ) -> None:
        """history/latest are keyed by ROWS' fields (mem in percent of total)."""
        self.query_one(".gpu-title", Static).update(title)
        self.query_one(".gpu-holder", Static).update(holder)
        for key, label, unit in ROWS:
            self.query_one(f"#lbl-{key}", Label).update(
                f"{label:>5} {report.num(latest.get(key), '.0f', 'N/A', unit)}"
            )
            data = [float(v) for v in history.get(key, []) if contract.is_number(v)]
            # one sample draws as a full bar, two equal ones as a floor: start as a floor
            self.query_one(f"#spk-{key}", Sparkline).data = (
                data * 2 if len(data) == 1 else data
            ) or [0.0, 0.0]
