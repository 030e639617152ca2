"""New run: pick a config from configs/ (or the one launched last, offered first), edit it in
a form grouped by table (validated as you type with amc_tui.config, the validator of `config
check`; the error shows beside its field, and a missing data file is named with the command
that makes one), save it as a new config (tomli-w, never overwriting without asking), launch
it (optionally on a chosen GPU) through amc_tui.launch, and see the queue.

The status line stays put above the tabs (only the fields scroll), the first field has focus
when the form opens, and ctrl+t moves to the next tab from inside a field.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from amc_tui import contract, report
from amc_tui.config import Config, ConfigError, dumps_config, load_config, parse_toml
from amc_tui.fsutil import atomic_write_text
from amc_tui.launch.queue import launch
from amc_tui.run.rundir import list_runs
from amc_tui.tui import keys
from amc_tui.tui.models.form_model import GROUPS, FieldSpec, FormModel
from amc_tui.tui.models.prefs import last_config, remember_config
from amc_tui.tui.models.runs_view import gpu_text, state_text
from amc_tui.tui.screens.base import PollingScreen
from amc_tui.tui.screens.dialogs import Confirm, Prompt

if TYPE_CHECKING:
    from amc_tui.config import Config
    from amc_tui.run.rundir import RunInfo

DEFAULTS = "(defaults)"
LAST = "(last launched)"
QUEUE_STATES = ("running", "stalled", "queued", "submitted")


def input_id(spec: FieldSpec) -> str:
    return f"f-{spec.table or 'top'}-{spec.key}"


class FieldInput(Input):
    """A form field: moving into it (Tab, shift+Tab, ctrl+t) selects nothing and puts the
    cursor at the end, so the next key adds to the text; Textual's Input selects it all on
    focus and the next key wiped it (a field's notes were lost so)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, select_on_focus=False, **kw)

    def on_focus(self, event: events.Focus) -> None:
        if not event.from_app_focus:  # the terminal regaining focus keeps the cursor
            self.cursor_position = len(self.value)


@dataclass
class ConfigsListed(Message):
    names: list[str]
    gpus: list[tuple[str, str]]  # (label, value)
    last: Config | None = None  # the config launched last from this form


@dataclass
class DataChecked(Message):
    path: str
    exists: bool


@dataclass
class ConfigRead(Message):
    name: str
    cfg: Config | None = None
    raw: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class QueueRead(Message):
    runs: list[RunInfo] = field(default_factory=list)
    error: str | None = None


@dataclass
class Launched(Message):
    info: RunInfo | None = None
    error: str | None = None


@dataclass
class Saved(Message):
    path: Path | None = None
    error: str | None = None


class NewRunScreen(PollingScreen):
    BINDINGS = keys.bindings("new_run")
    POLL_S = 2.0

    def __init__(self) -> None:
        super().__init__(classes="new-run")
        self.form = FormModel()
        self.source: str = DEFAULTS
        self.mounted_groups: set[str] = set()
        self._synced_groups: set[str] = set()
        self._shown_errors: dict[str, str] = {}
        self._bad_groups: frozenset[str] = frozenset()
        self._status_text = ""
        self.config_names: list[str] = []
        self.last_config: Config | None = None
        self.data_missing: str | None = None  # the config's data path when it does not exist
        self.launch_error: str | None = None  # shown until the form changes
        self._data_checked: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="nr-bar"):
            yield Select([(DEFAULTS, DEFAULTS)], value=DEFAULTS, allow_blank=False, id="nr-config")
            yield Select([("GPU: auto", "auto")], value="auto", allow_blank=False, id="nr-gpu")
            yield Button("Save ^s", id="nr-save")
            yield Button("Launch ^l", id="nr-launch", variant="success")
        yield Static("", id="nr-status", markup=True)
        with TabbedContent(id="nr-tabs"):
            for group in GROUPS:
                with TabPane(_group_title(group), id=_tab_id(group)):
                    yield VerticalScroll(  # no Tab stop of its own: Tab goes field to field
                        Grid(classes="field-grid", id=f"nr-grid-{group or 'top'}"),
                        can_focus=False,
                    )
            with TabPane("Queue", id="nr-tab-queue"):
                yield DataTable(id="nr-queue", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def _field_widgets(self, group: str) -> list[Widget]:
        """Label, input and (hidden unless wrong) error line for each key of a table."""
        out: list[Widget] = []
        for spec in (s for s in self.form.specs if s.table == group):
            hint = " | ".join(_choice_text(c) for c in spec.choices) if spec.choices else ""
            suggester = (
                SuggestFromList([_choice_text(c) for c in spec.choices], case_sensitive=False)
                if spec.choices
                else None
            )
            out.append(Label(spec.key, classes="field-key"))
            out.append(
                FieldInput(
                    self.form.texts[spec.dotted],
                    placeholder=hint or "(empty)",
                    suggester=suggester,
                    id=input_id(spec),
                    classes="field-input",
                )
            )
            out.append(Static("", classes="field-error", id=f"err-{input_id(spec)}", markup=False))
        return out

    async def _ensure_group(self, group: str) -> None:
        """Fields are mounted when their tab is first shown: mounting all ~50 inputs at once
        would delay the screen on a slow box."""
        if group in self.mounted_groups:
            return
        self.mounted_groups.add(group)
        grid = self.query_one(f"#nr-grid-{group or 'top'}", Grid)
        await grid.mount_all(self._field_widgets(group))
        self._show_errors()

    @on(TabbedContent.TabActivated, "#nr-tabs")
    async def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        pane_id = event.pane.id or ""
        for group in GROUPS:
            if pane_id == _tab_id(group):
                await self._ensure_group(group)

    async def on_mount(self) -> None:
        table = self.query_one("#nr-queue", DataTable)
        table.add_columns("#", "name", "id", "state", "arch", "GPU", "created")
        self._list_configs()
        await self._ensure_group(GROUPS[0])
        self._focus_first(GROUPS[0])

    def _focus_first(self, group: str) -> None:
        """Focus the first field of a table's tab (the form opens ready to type)."""
        spec = next(s for s in self.form.specs if s.table == group)
        for inp in self.query(f"#{input_id(spec)}"):
            inp.focus()

    # ------------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="nr-list", exit_on_error=False)
    def _list_configs(self) -> None:
        ws = self.amc.ws
        try:
            names = sorted(p.name for p in ws.configs.glob("*.toml")) if ws.configs.is_dir() else []
        except OSError:
            names = []
        last = last_config(ws)
        gpus: list[tuple[str, str]] = []
        try:
            snap = self.amc.sample_gpus()
            if snap.ok:
                for g in snap.gpus:
                    util = f" {g.util:.0f}%" if contract.is_number(g.util) else ""
                    gpus.append((f"GPU {g.index} {g.name or ''}{util}".strip(), str(g.index)))
        except Exception:  # noqa: BLE001 - no GPU list is fine: launch on auto
            pass
        self.post_message(ConfigsListed(names, gpus, last))

    @work(thread=True, exclusive=True, group="nr-read", exit_on_error=False)
    def _read_config(self, name: str) -> None:
        path = self.amc.ws.configs / name
        try:
            self.post_message(ConfigRead(name, cfg=load_config(path)))
        except ConfigError as e:
            raw = None
            with contextlib.suppress(Exception):
                raw = parse_toml(path.read_text(encoding="utf-8"), str(path))
            self.post_message(ConfigRead(name, raw=raw, error=str(e)))
        except Exception as e:  # noqa: BLE001
            self.post_message(ConfigRead(name, error=str(e)))

    def start_poll(self) -> None:
        self._read_queue()
        if self.data_missing is not None:  # made meanwhile (`amc-tui data synth` elsewhere)?
            self._check_data(self.data_missing)

    @work(thread=True, exclusive=True, group="nr-queue", exit_on_error=False)
    def _read_queue(self) -> None:
        try:
            runs = [
                r for r in list_runs(self.amc.ws, with_last_epoch=False) if r.state in QUEUE_STATES
            ]
            self.post_message(QueueRead(runs))
        except Exception as e:  # noqa: BLE001
            self.post_message(QueueRead(error=str(e)))

    @work(thread=True, exclusive=True, group="nr-data", exit_on_error=False)
    def _check_data(self, path: str) -> None:
        try:
            exists = self.amc.ws.resolve(path).is_file()
        except OSError:
            exists = False
        self.post_message(DataChecked(path, exists))

    @work(thread=True, exclusive=True, group="nr-launch", exit_on_error=False)
    def _launch(self, cfg: Config, gpus: list[int] | None) -> None:
        try:
            info = launch(self.amc.ws, cfg, gpus=gpus)
        except Exception as e:  # noqa: BLE001 - a failed launch is shown in place
            self.post_message(Launched(error=str(e)))
            return
        with contextlib.suppress(Exception):  # the run is launched either way
            remember_config(self.amc.ws, cfg)
        self.post_message(Launched(info))

    @work(thread=True, exclusive=True, group="nr-save", exit_on_error=False)
    def _save(self, path: Path, cfg: Config) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, dumps_config(cfg))
            self.post_message(Saved(path))
        except Exception as e:  # noqa: BLE001
            self.post_message(Saved(error=str(e)))

    # ------------------------------------------------------------------ results

    def _config_options(self) -> list[tuple[str, str]]:
        first = [(LAST, LAST)] if self.last_config is not None else []
        return first + [(DEFAULTS, DEFAULTS)] + [(n, n) for n in self.config_names]

    @on(ConfigsListed)
    def _configs_listed(self, msg: ConfigsListed) -> None:
        sel = self.query_one("#nr-config", Select)
        self.config_names = list(msg.names)
        self.last_config = msg.last
        sel.set_options(self._config_options())
        preferred = next((n for n in ("demo.toml",) if n in msg.names), None)
        sel.value = LAST if msg.last is not None else preferred or DEFAULTS
        gpu = self.query_one("#nr-gpu", Select)
        gpu.set_options([("GPU: auto", "auto")] + msg.gpus)
        gpu.value = "auto"

    @on(Select.Changed, "#nr-config")
    def _config_chosen(self, event: Select.Changed) -> None:
        value = event.value
        if not isinstance(value, str) or value == self.source:
            return
        self.source = value
        if value == DEFAULTS:
            self._load_form(Config(), None)
        elif value == LAST and self.last_config is not None:
            self._load_form(self.last_config, None)
        else:
            self._read_config(value)

    @on(ConfigRead)
    def _config_read(self, msg: ConfigRead) -> None:
        if msg.name != self.source:
            return
        if msg.cfg is not None:
            self._load_form(msg.cfg, None)
            return
        self.amc.report_error(f"{msg.name}: {msg.error}")
        if msg.raw is not None:
            self._load_form(None, msg.raw)

    def _load_form(self, cfg: Config | None, raw: dict[str, Any] | None) -> None:
        self.launch_error = None
        if cfg is not None:
            self.form.load(cfg)
        elif raw is not None:
            self.form.load_raw(raw)
        for spec in self.form.specs:
            if spec.table not in self.mounted_groups:
                continue  # mounted later from form.texts
            inp = self.query_one(f"#{input_id(spec)}", Input)
            if inp.value != self.form.texts[spec.dotted]:
                with inp.prevent(Input.Changed):
                    inp.value = self.form.texts[spec.dotted]
        self._show_errors()

    @on(Input.Changed, ".field-input")
    def _field_changed(self, event: Input.Changed) -> None:
        key = _dotted(event.input.id or "")
        if key is None or self.form.texts.get(key) == event.value:
            return
        self.launch_error = None
        self.form.set(key, event.value)
        self._show_errors()

    def _show_errors(self, force: bool = False) -> None:
        """Touch only what changed: this runs on every keystroke."""
        errors = dict(self.form.errors)
        for spec in self.form.specs:
            if spec.table not in self.mounted_groups:
                continue
            err = errors.get(spec.dotted, "")
            if (
                not force
                and err == self._shown_errors.get(spec.dotted, "")
                and (spec.table in self._synced_groups)
            ):
                continue
            iid = input_id(spec)
            box = self.query_one(f"#err-{iid}", Static)
            box.update(err)
            box.display = bool(err)
            self.query_one(f"#{iid}", Input).set_class(bool(err), "-invalid")
        self._synced_groups = set(self.mounted_groups)
        self._shown_errors = errors
        bad_groups = frozenset(self.form.by_key[k].table for k in errors)
        if bad_groups != self._bad_groups:
            self._bad_groups = bad_groups
            tabs = self.query_one("#nr-tabs", TabbedContent)
            for group in GROUPS:
                mark = " !" if group in bad_groups else ""
                tabs.get_tab(_tab_id(group)).label = _group_title(group) + mark
        self._status()
        for bid in ("#nr-save", "#nr-launch"):
            button = self.query_one(bid, Button)
            if button.disabled == self.form.ok:
                button.disabled = not self.form.ok

    def _status(self) -> None:
        """One line above the tabs: valid or the first error, and whether the data file
        exists (a config is only launchable with its data)."""
        status = self.query_one("#nr-status", Static)
        if self.form.ok:
            cfg = self.form.config
            assert cfg is not None
            if cfg.data.path != self._data_checked:
                self._data_checked = cfg.data.path
                self._check_data(cfg.data.path)
            if self.data_missing == cfg.data.path:
                path = _esc(cfg.data.path)
                text = f"[yellow]missing {path}[/] · make it: amc-tui data synth {path}"
            else:
                text = (f"[green]valid[/] · {cfg.model.arch} · {cfg.train.epochs} epochs · "
                        f"{cfg.image.size}px · data {_esc(cfg.data.path)}")  # fmt: skip
        else:
            first = self.form.form_error or next(iter(self.form.errors.values()), "invalid")
            text = f"[red]invalid[/] · {_esc(first)}"
        text = self.launch_error or text
        if text != self._status_text:
            self._status_text = text
            status.update(text)

    @on(DataChecked)
    def _data_checked_msg(self, msg: DataChecked) -> None:
        if msg.path != self._data_checked:
            return  # the field changed since
        missing = None if msg.exists else msg.path
        if missing != self.data_missing:
            self.data_missing = missing
            self._status()

    @on(QueueRead)
    def _queue(self, msg: QueueRead) -> None:
        if msg.error:
            self.amc.report_error(f"queue: {msg.error}")
        table = self.query_one("#nr-queue", DataTable)
        runs = sorted(msg.runs, key=lambda r: (r.state != "running", r.created_at or 0))
        keys = [str(r.dir) for r in runs]
        for key in [k for k in table.rows if k not in set(keys)]:
            table.remove_row(key)
        for pos, r in enumerate(runs, 1):
            cells = [str(pos) if r.state == "queued" else "", r.name, r.id, state_text(r.state),
                     r.arch or report.MISSING, gpu_text(r), report.clock(r.created_at)]  # fmt: skip
            key = str(r.dir)
            if key in table.rows:
                for col, value in zip(table.columns, cells, strict=False):
                    if str(table.get_cell(key, col)) != str(value):
                        table.update_cell(key, col, value)
            else:
                table.add_row(*cells, key=key)
        tab = self.query_one("#nr-tabs", TabbedContent)
        n_q = sum(r.state == "queued" for r in runs)
        tab.get_tab(
            "nr-tab-queue"
        ).label = f"Queue {n_q}"  # 10 config tabs before it: 80 columns hold this
        self.poll_done()

    @on(Launched)
    def _launched(self, msg: Launched) -> None:
        if msg.error or msg.info is None:
            self.amc.report_error(f"launch failed: {msg.error}")
            self.launch_error = f"[red]launch failed[/] · {_esc(msg.error or '')}"
            self._status()
            return
        info = msg.info
        self.amc.report(f"launched {info.name} ({info.id}): {info.state}")
        self._status_text = ""  # "launching..." is over: back to the form's own line
        self._status()
        self.amc.open_launched(info.dir)  # this form goes: its keys cannot take a stray key

    @on(Saved)
    def _saved(self, msg: Saved) -> None:
        if msg.error or msg.path is None:
            self.amc.report_error(f"save failed: {msg.error}")
            return
        name = msg.path.name
        self.amc.report(f"saved {msg.path}")
        sel = self.query_one("#nr-config", Select)
        self.config_names = sorted({*self.config_names, name})
        self.source = name
        sel.set_options(self._config_options())
        sel.value = name

    # ------------------------------------------------------------------ actions

    @on(Button.Pressed, "#nr-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#nr-launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    def action_save(self) -> None:
        if not self.form.ok:
            self.amc.report_error(
                "fix the form first: " + next(iter(self.form.errors.values()), "")
            )
            return
        cfg = self.form.config
        named = self.source not in (DEFAULTS, LAST)
        stem = Path(self.source).stem if named else (cfg.name or "config")
        suggestion = f"{stem}-edit.toml"

        def chosen(name: str | None) -> None:
            if not name:
                return
            path = self._config_path(name)
            if path is None:
                return
            if path.exists():
                self.app.push_screen(
                    Confirm(f"{path.name} exists. Overwrite it?", yes="Overwrite"),
                    lambda ok: self._save(path, cfg) if ok else self.amc.report("not saved"),
                )
            else:
                self._save(path, cfg)

        self.app.push_screen(Prompt("Save config as (in configs/):", suggestion), chosen)

    def _config_path(self, name: str) -> Path | None:
        name = name.strip()
        if not name.endswith(".toml"):
            name += ".toml"
        if "/" in name or "\\" in name or name.startswith("."):
            self.amc.report_error(f"{name!r}: give a file name inside configs/")
            return None
        return self.amc.ws.configs / name

    def action_launch(self) -> None:
        if not self.form.ok:
            self.amc.report_error(
                "fix the form first: " + next(iter(self.form.errors.values()), "")
            )
            return
        gpu = self.query_one("#nr-gpu", Select).value
        gpus = [int(gpu)] if isinstance(gpu, str) and gpu.isdigit() else None
        self.launch_error = None
        self._status_text = "launching..."
        self.query_one("#nr-status", Static).update(self._status_text)
        self._launch(self.form.config, gpus)

    async def action_next_tab(self) -> None:
        """Next tab, focus on its first field: focus left in a hidden field would pull the
        tabs straight back to that field's tab."""
        tabs = self.query_one(TabbedContent)
        order = [*(_tab_id(g) for g in GROUPS), "nr-tab-queue"]
        i = order.index(tabs.active) if tabs.active in order else -1
        nxt = order[(i + 1) % len(order)]
        group = next((g for g in GROUPS if _tab_id(g) == nxt), None)
        if group is not None:
            await self._ensure_group(group)
            tabs.active = nxt
            self._focus_first(group)
        else:
            tabs.active = nxt
            self.query_one("#nr-queue", DataTable).focus()

    def show_field(self, dotted: str) -> None:
        """Switch to a field's tab and focus it (for the first error, and for tests)."""
        self.call_later(self._show_field, self.form.by_key[dotted])

    async def _show_field(self, spec: FieldSpec) -> None:
        """Mount the tab's fields first, then switch and focus together: focus left in a
        field of the old tab would pull the tabs straight back."""
        await self._ensure_group(spec.table)
        self.query_one(TabbedContent).active = _tab_id(spec.table)
        for inp in self.query(f"#{input_id(spec)}"):
            inp.focus()


def _tab_id(group: str) -> str:
    return f"nr-tab-{group or 'top'}"


def _group_title(group: str) -> str:
    return group if group else "general"


def _dotted(iid: str) -> str | None:
    if not iid.startswith("f-"):
        return None
    table, _, key = iid[2:].partition("-")
    return key if table == "top" else f"{table}.{key}"


def _choice_text(c: Any) -> str:
    if isinstance(c, bool):
        return "true" if c else "false"
    return str(c)


def _esc(text: str) -> str:
    return escape(str(text))
