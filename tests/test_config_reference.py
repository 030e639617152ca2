"""docs/CONFIG.md is generated from the config schema (docs/make_config_reference.py, `make
docs`): the committed file must be what the generator makes now, and name every key."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from amc_tui.config import TABLES, Config

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "docs" / "CONFIG.md"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location(
        "make_config_reference", REPO / "docs" / "make_config_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_is_what_the_schema_makes(generator) -> None:
    assert REFERENCE.read_text(encoding="utf-8") == generator.render(), (
        "docs/CONFIG.md is stale: run `make docs` and commit it"
    )


def _sections(text: str) -> dict[str, str]:
    """Each `## ` section's body by its title (`Top level`, `[data]`, ...)."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {title.strip("`"): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_every_schema_key_has_a_row_in_its_table() -> None:
    defaults = Config().to_dict()
    sections = _sections(REFERENCE.read_text(encoding="utf-8"))
    expected = {"Top level": [k for k in defaults if k not in TABLES]}
    expected |= {f"[{t}]": list(defaults[t]) for t in TABLES}
    assert list(sections) == list(expected)
    for title, keys in expected.items():
        rows = re.findall(r"^\| `(\w+)` \|", sections[title], flags=re.M)
        assert rows == keys, title


def test_a_key_without_a_meaning_is_refused(generator) -> None:
    @dataclass
    class Half:
        """[half]: a table that documents one key of two.

        a: the first key
        """

        a: int = 0
        b: int = 1

    with pytest.raises(ValueError, match=r"undocumented keys \['b'\]"):
        generator.table_section("half", Half)


def test_ranges_come_from_the_validator(generator) -> None:
    assert generator.rule("image", "size", int, 224) == "8..1024"
    assert generator.rule("train", "lr", float, 1e-4) == "(0, 10]"
    assert generator.rule("data", "split_seed", int, 42) == ""
