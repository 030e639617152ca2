"""The New-run form as data: one text field per config key, validated as you type with the
same validator as `amc-tui config check` (`amc_tui.config.from_dict`).

Each field holds the text the user typed. Strings are typed bare; everything else is a TOML
value (`1e-4`, `[0.8, 0.1, 0.1]`, `{mod = 1.0, snr = 1.0}`); a non-TOML word falls back to a
string, as with `--set`. An error names the field it belongs to, so the screen shows it beside
that field.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from amc_tui.config import TABLES, TOP_KEYS, Config, ConfigError, from_dict

GROUPS: tuple[str, ...] = ("", *TABLES)  # "" = top-level keys


@dataclass(frozen=True)
class FieldSpec:
    table: str  # "" for top-level keys
    key: str
    kind: str  # "str", "choice", "bool", "value"
    choices: tuple[Any, ...] = ()

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.key}" if self.table else self.key


def _kind(tp: Any) -> tuple[str, tuple[Any, ...]]:
    if tp is str:
        return "str", ()
    if tp is bool:
        return "bool", (True, False)
    origin = get_origin(tp)
    if origin is Literal:
        return "choice", get_args(tp)
    if origin is not None and type(None) not in get_args(tp):
        lits = [a for a in get_args(tp) if get_origin(a) is Literal]
        if lits and bool in get_args(tp):  # e.g. Literal["auto"] | bool
            return "choice", (*get_args(lits[0]), True, False)
    return "value", ()


def field_specs() -> list[FieldSpec]:
    """Every config key in schema order: top-level keys first, then each table's."""
    hints = typing.get_type_hints(Config)
    specs = [FieldSpec("", k, *_kind(hints[k])) for k in TOP_KEYS]
    for table, cls in TABLES.items():
        th = typing.get_type_hints(cls)
        specs += [FieldSpec(table, f.name, *_kind(th[f.name])) for f in dataclasses.fields(cls)]
    return specs


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_literal(value: Any) -> str:
    """A TOML value literal (inline tables for dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eEn") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (
            f"{k if _BARE_KEY.match(str(k)) else json.dumps(str(k))} = {toml_literal(v)}"
            for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML literal for {type(value).__name__}")


def to_text(spec: FieldSpec, value: Any) -> str:
    """What the field shows for a value."""
    if isinstance(value, str) and (spec.kind == "str" or parse_text(spec, value) == value):
        return value  # bare words read back as themselves
    return toml_literal(value)


def parse_text(spec: FieldSpec, text: str) -> Any:
    """The typed value of a field's text (validation happens in from_dict)."""
    if spec.kind == "str":
        return text
    raw = text.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _owner(message: str, specs: list[FieldSpec]) -> str | None:
    """The dotted key a ConfigError message is about, if it names one."""
    m = re.match(r"^\[(\w+)\]\s*(\w+)?", message)
    if m:
        table, key = m.group(1), m.group(2)
        names = {s.key for s in specs if s.table == table}
        if key in names:
            return f"{table}.{key}"
        # e.g. "[data] split: ..." or "[data] classes: ..."
        for s in specs:
            if s.table == table and re.search(rf"\b{re.escape(s.key)}\b", message):
                return s.dotted
    m = re.search(r"'(\w+)' in \[(\w+)\]", message)  # unknown arch 'x' in [model]
    if m and m.group(2) == "model":
        return "model.arch"
    if message.startswith("name:"):
        return "name"
    for k in TOP_KEYS:
        if re.match(rf"^{k}\b", message):
            return k
    return None


def _mentions(message: str, spec: FieldSpec) -> bool:
    if spec.table and f"[{spec.table}]" not in message:
        return False
    return re.search(rf"\b{re.escape(spec.key)}\b", message) is not None


class FormModel:
    """Field texts -> raw TOML dict -> validated Config, with per-field errors."""

    def __init__(self, cfg: Config | None = None) -> None:
        self.specs = field_specs()
        self.by_key = {s.dotted: s for s in self.specs}
        cfg = cfg or Config()
        self.texts: dict[str, str] = {s.dotted: to_text(s, cfg.get(s.dotted)) for s in self.specs}
        self.errors: dict[str, str] = {}
        self.form_error: str | None = None
        self.config: Config | None = cfg
        self.validate()

    def raw(self) -> dict[str, Any]:
        """The nested dict the texts describe (what from_dict and tomli-w take)."""
        out: dict[str, Any] = {}
        for s in self.specs:
            value = parse_text(s, self.texts[s.dotted])
            if s.table:
                out.setdefault(s.table, {})[s.key] = value
            else:
                out[s.key] = value
        return out

    def set(self, dotted: str, text: str) -> str | None:
        """Change one field; returns that field's error (None when the whole form is valid
        or the problem is elsewhere)."""
        self.texts[dotted] = text
        self.validate(focus=dotted)
        return self.errors.get(dotted)

    def validate(self, focus: str | None = None) -> bool:
        """Check the whole form. The first problem goes to the field it names (or to `focus`,
        the field just edited, when the message names none)."""
        self.errors = {}
        self.form_error = None
        try:
            self.config = from_dict(self.raw())
            return True
        except ConfigError as e:
            self.config = None
            msg = str(e)
            owner = focus if focus and _mentions(msg, self.by_key[focus]) else None
            owner = owner or _owner(msg, self.specs) or focus
            if owner:
                self.errors[owner] = msg
            else:
                self.form_error = msg
            return False

    @property
    def ok(self) -> bool:
        return self.config is not None

    def load(self, cfg: Config) -> None:
        self.texts = {s.dotted: to_text(s, cfg.get(s.dotted)) for s in self.specs}
        self.validate()

    def load_raw(self, raw: dict[str, Any]) -> None:
        """Texts from a parsed (possibly invalid) TOML document over the defaults, so a bad
        config opens in the form with its error beside the field instead of not at all."""
        base = Config()
        texts = {s.dotted: to_text(s, base.get(s.dotted)) for s in self.specs}
        for s in self.specs:
            node = raw.get(s.table, {}) if s.table else raw
            if isinstance(node, dict) and s.key in node:
                try:
                    texts[s.dotted] = to_text(s, node[s.key])
                except TypeError:
                    texts[s.dotted] = str(node[s.key])
        self.texts = texts
        self.validate()
