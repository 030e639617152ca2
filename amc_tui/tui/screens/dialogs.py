"""Small modal dialogs: yes/no confirmation, a one-line text prompt, the column picker."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList
from textual.widgets.selection_list import Selection

from amc_tui.tui import keys
from amc_tui.tui.models.runs_view import default_columns


class Confirm(ModalScreen[bool]):
    """y / enter confirms, n / escape cancels."""

    BINDINGS = keys.bindings("confirm")

    def __init__(
        self, question: str, yes: str = "Yes", no: str = "Cancel", danger: bool = True
    ) -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.yes, self.no = yes, no
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.question, classes="dialog-question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error" if self.danger else "success",
                             id="yes")  # fmt: skip
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, ok: bool) -> None:
        self.dismiss(ok)


class Prompt(ModalScreen[str | None]):
    """Enter submits the text, escape cancels (None)."""

    BINDINGS = keys.bindings("prompt")

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Label(self.question, classes="dialog-question", markup=False)
            yield Input(self.value, id="prompt-input")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickColumns(ModalScreen[list[str] | None]):
    """The Runs table's columns: space or enter toggles one; escape (or Done) applies."""

    BINDINGS = keys.bindings("pick_columns")

    def __init__(self, choices: list[tuple[str, str]], shown: list[str]) -> None:
        super().__init__(classes="dialog")
        self.choices = choices
        self.shown = set(shown)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="pick-columns"):
            yield Label("Columns: space toggles, escape applies, d defaults",
                        classes="dialog-question")  # fmt: skip
            yield SelectionList[str](
                *[Selection(text, key, key in self.shown) for key, text in self.choices],
                id="pick-list",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Done (esc)", variant="primary", id="done")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    @on(Button.Pressed, "#done")
    def _pressed(self) -> None:
        self.action_done()

    def action_done(self) -> None:
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_defaults(self) -> None:
        keep = set(default_columns(self.app.size.width))
        sel = self.query_one(SelectionList)
        for key, _text in self.choices:
            if key in keep:
                sel.select(key)
            else:
                sel.deselect(key)
