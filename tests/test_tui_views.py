"""The TUI's pure view models: run rows, filter and sort, the config form, live series,
colour scales, RUNLOG headings. No terminal needed."""

from __future__ import annotations

import pytest
from tui_fixtures import T0, demo_workspace

from amc_tui import report
from amc_tui.config import Config, loads_config
from amc_tui.run.rundir import list_runs, read_run
from amc_tui.tui.models import runs_view as rv
from amc_tui.tui.models.form_model import FormModel, parse_text, toml_literal
from amc_tui.tui.models.heat import Scale, delta_scale, metric_scale
from amc_tui.tui.models.live_model import LiveModel, tail_lines, throughput
from amc_tui.tui.screens.runlog import entry_title, split_runlog


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    return demo_workspace(tmp_path_factory.mktemp("views") / "ws")


def test_the_app_formats_through_report_with_its_own_digits() -> None:
    """The app's texts are report's formats (one each), with the app's one decimal."""
    assert report.duration(3725) == "1h02m"
    assert report.duration(65) == "1m05s"
    assert report.duration(None) == report.MISSING
    assert report.pct(0.8734, 1) == "87.3%"
    assert report.pct(0.8734, 1, unit="") == "87.3"
    assert report.pct(float("nan"), 1) == report.MISSING
    assert report.rate(780) == "780 samples/s"
    assert report.ago(T0, T0 + 12) == "12s ago"


def test_metric_text_follows_the_contracts_percent_rule() -> None:
    assert report.metric("val.acc_combined", 0.8734, ".3f", digits=1) == "87.3%"
    assert report.metric("snr_within_1", 0.8734, unit="") == "87.34"
    assert report.metric("snr_mae_db", 2.345, ".2f") == "2.35"  # dB, not a share
    assert report.metric("val.loss", 0.41234, ".3f", digits=1) == "0.412"
    assert report.metric("acc_mod", None) == report.MISSING
    assert report.delta("acc_combined", 0.0123, digits=1) == "+1.2pt"
    assert report.delta("snr_mae_db", -0.5, "+.2f", digits=1) == "-0.50"
    assert report.delta("acc_combined", float("nan")) == report.MISSING


def test_best_column_shows_a_number_for_a_lower_is_better_metric(demo) -> None:
    info = read_run(demo.runs / "amber-wave-1")
    info.best = {"metric": "val.loss", "value": 0.4123, "epoch": 2}
    assert rv.row_cells(info, now=T0)["best"].plain.strip() == "0.412"


def test_row_cells_follow_the_run(demo) -> None:
    info = read_run(demo.runs / "fresh-dew-6")
    cells = rv.row_cells(info, now=info.started_at + 125, marked=True)
    assert cells["name"].plain == "*fresh-dew-6"
    plain = {k: v.plain.strip() for k, v in cells.items()}
    assert plain["state"] == "running"
    assert plain["epoch"] == "3/10"
    assert plain["elapsed"] == "2m05s"
    # 7 epochs left x 60 s per epoch, less the 6 s since epoch 3's event: it counts down
    assert plain["eta"] == "6m54s"
    assert plain["best"] == report.pct(info.best["value"], 1, unit="")
    unmarked = rv.row_cells(info, now=info.started_at + 125)
    assert rv.changed_cells(cells, unmarked) == ["name"]
    later = rv.row_cells(info, now=info.started_at + 185)
    assert set(rv.changed_cells(unmarked, later)) == {"elapsed", "eta"}


def test_filter_by_state_tag_and_words(demo) -> None:
    infos = list_runs(demo)
    names = lambda text: sorted(i.name for i in infos if rv.RunFilter.parse(text).matches(i))  # noqa: E731
    assert names("state:failed") == ["calm-sky-3"]
    assert names("state:running,queued") == ["eager-fog-5", "fresh-dew-6"]
    assert names("tag:baseline") == ["amber-wave-1", "bold-river-2"]
    assert names("swin") == ["calm-sky-3"]
    assert names("tag:baseline amber") == ["amber-wave-1"]
    assert len(names("")) == len(infos)


def test_sort_puts_unknown_last_both_ways(demo) -> None:
    infos = list_runs(demo)
    up = rv.select(infos, rv.RunFilter(), "best", False, T0)
    down = rv.select(infos, rv.RunFilter(), "best", True, T0)
    assert up[-1].name == down[-1].name == "eager-fog-5"  # queued: no best yet
    vals = [rv.best_value(i) for i in down[:-1]]
    assert vals == sorted(vals, reverse=True)


def test_sort_breaks_ties_by_created_then_name_whatever_the_input_order(demo) -> None:
    """Equal sort values (two completed runs by state, every run by an unset lr) come out in
    one order however the rows went in: newest first, then by name, in both directions."""
    infos = list_runs(demo)
    for column in ("state", "lr", "gpu"):
        for reverse in (False, True):
            ordered = [i.name for i in rv.order(list(infos), column, reverse, T0)]
            assert [i.name for i in rv.order(infos[::-1], column, reverse, T0)] == ordered
    by_state = [i.name for i in rv.order(infos, "state", False, T0)]
    assert by_state.index("bold-river-2") < by_state.index("amber-wave-1")  # newer first


def test_form_validates_like_config_check() -> None:
    form = FormModel()
    assert form.ok
    assert form.set("train.lr", "-1") == "[train] lr must be in (0, 10], got -1.0"
    assert not form.ok
    assert "train.lr" in form.errors
    assert form.set("train.lr", "3e-4") is None and form.ok
    assert form.config.train.lr == pytest.approx(3e-4)
    # a cross-field error shows beside the field being edited
    form.set("data.snr_min", "10")
    form.set("data.snr_max", "0")
    assert list(form.errors) == ["data.snr_max"]
    form.set("data.snr_max", "30")
    assert form.set("model.arch", "swim_tiny").startswith("unknown arch 'swim_tiny'")
    form.set("model.arch", "resnet18")
    assert form.set("name", "a/b") == "name: run name 'a/b' contains a path separator"
    form.set("name", "")
    assert form.set("loss.weights", "{mod = 2.0, snr = 1.0}") is None
    assert form.config.loss.weights == {"mod": 2.0, "snr": 1.0}
    assert form.set("data.classes", '["BPSK", "QPSK"]') is None
    assert form.config.data.classes == ["BPSK", "QPSK"]


def test_form_round_trips_every_default_through_toml() -> None:
    form = FormModel(Config())
    cfg = form.config
    assert cfg is not None and cfg.to_dict() == Config().to_dict()
    for spec in form.specs:
        value = Config().get(spec.dotted)
        assert parse_text(spec, form.texts[spec.dotted]) == value, spec.dotted
    assert toml_literal({"a b": [1, 2.5, True]}) == '{"a b" = [1, 2.5, true]}'


def test_form_loads_a_bad_file_with_the_error_beside_its_field() -> None:
    form = FormModel()
    form.load_raw({"train": {"lr": "fast"}, "model": {"arch": "resnet18"}})
    assert form.errors == {"train.lr": '[train] lr must be a number, got "fast"'}
    assert form.texts["model.arch"] == "resnet18"
    form.load(loads_config("[train]\nepochs = 3\n"))
    assert form.ok and form.texts["train.epochs"] == "3"


def test_live_model_series_resume_and_decimation() -> None:
    m = LiveModel(max_step_points=100)
    ep = lambda e, acc: {"kind": "epoch", "epoch": e, "val": {"acc_combined": acc, "loss": 1.0},  # noqa: E731
                         "train": {"loss": 1.2}, "weights": {"mod": 0.6, "snr": 0.4},
                         "epoch_time_s": 30.0}  # fmt: skip
    m.feed([{"kind": "start"}, ep(1, 0.1), ep(2, 0.2), ep(2, 0.25), {"kind": "future"}])
    v = m.view()
    assert v.epochs == [1, 2] and v.series["val_acc_combined"] == [0.1, 0.25]
    assert v.series["w_mod"] == [0.6, 0.6]
    m.feed({"kind": "step", "step": i, "loss": 1.0, "samples_per_s": 5.0} for i in range(1, 1001))
    v = m.view()
    assert len(v.step_x) <= 100 and v.step_x == sorted(v.step_x)
    assert v.step_x[0] == 1 and v.step_x[-1] > 900
    assert throughput(v) == 5.0
    m.feed([{"kind": "gpu", "index": 0, "util": 50, "mem_used_mb": 10, "mem_total_mb": 100}])
    assert m.view().gpus[0]["util"] == [50.0]


def test_tail_lines() -> None:
    assert tail_lines(b"a\nb\r\nc\n", 2) == ["b", "c"]
    assert tail_lines(b"x\nprogress 1\rprogress 2\n", 5) == ["x", "progress 2"]


def test_scales() -> None:
    acc = metric_scale("acc_combined", [0.1, 0.9])
    assert acc.rgb(0.0) == (165, 0, 38) and acc.rgb(1.0) == (26, 152, 80)
    mae = metric_scale("snr_mae_db", [0.5, 8.0])
    assert mae.rgb(0.0) == (26, 152, 80)  # lower error is greener
    assert mae.label(2.345, 4) == " 2.3"
    d = delta_scale([-0.1, 0.05])
    assert d.rgb(0.1) == (26, 152, 80) and d.rgb(-0.1) == (69, 117, 180)
    assert d.label(0.05, 3) == " +5"
    mae_d = delta_scale([-0.5, 1.0], "snr_mae_db")  # a drop in error is the improvement
    assert mae_d.rgb(-1.0) == (26, 152, 80) and mae_d.label(-0.5, 4) == "-0.5"


def test_cell_deltas_align_both_exports_for_the_compare_grid() -> None:
    import pandas as pd

    from amc_tui.run.analysis import cell_deltas

    def per_cell(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
        return pd.DataFrame(
            [{"modulation": m, "snr_db": s, "n": 10, "acc_mod": v, "acc_snr": v,
              "acc_combined": v, "snr_mae_db": 1.0} for m, s, v in rows]
        )  # fmt: skip

    a = per_cell([("QPSK", 0, 0.5), ("QPSK", 10, 0.9), ("OOK", 0, 0.4)])
    b = per_cell([("QPSK", 0, 0.6), ("QPSK", 10, 0.7), ("BPSK", 20, 0.8)])
    grid = cell_deltas(a, b, n=5, grid=True)
    assert grid.mods == ["OOK", "BPSK", "QPSK"]  # class-table order, from either export
    assert grid.snrs == [0, 10, 20]
    assert grid.a[2][:2] == [0.5, 0.9] and grid.a[1] == [None, None, None]
    assert grid.b[1] == [None, None, 0.8]
    assert grid.delta[2][:2] == [pytest.approx(0.1), pytest.approx(-0.2)]
    assert grid.delta[0] == [None, None, None]  # only A has OOK
    assert [(c["modulation"], c["snr_db"]) for c in grid.top] == [("QPSK", 10), ("QPSK", 0)]
    assert cell_deltas(a, b, n=1) == grid.top[:1]  # the list callers get: same cells
    assert Scale("share").label(None, 3) == " · "


def test_runlog_split_into_user_text_and_entries() -> None:
    text = (
        "# RUNLOG\nmine\n<!--b-->\n## a (id1)\nx\n<!--e-->\nnotes\n<!--b-->\n## b (id2)\n<!--e-->\n"
    )
    s1, s2 = text.index("<!--b-->"), text.rindex("<!--b-->")
    offsets = {"id1": (s1, text.index("notes")), "id2": (s2, len(text))}
    chunks = split_runlog(text, offsets)
    assert [(c.key, c.title) for c in chunks] == [
        (None, ""),
        ("id1", "a"),
        (None, ""),
        ("id2", "b"),
    ]
    assert "".join(c.text for c in chunks) == text
    assert entry_title("## x (id9)\n", "id9") == "x"


def test_runlog_blocks_and_a_tables_natural_width() -> None:
    """Tables apart from prose (a fenced `|` line is no table); a table measures as wide as
    it draws unsqueezed, from its widest rows alone."""
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.segment import Segment

    from amc_tui.tui.screens.runlog import NaturalWidth, split_blocks, widest_rows

    table = "| Epoch | Val comb | w SNR |\n|---:|---:|---:|\n" + "".join(
        f"| {e} | {e * 7.123:.2f}% | {'100.0%' if e == 7 else '5.0%'} |\n" for e in range(1, 40)
    )
    text = f"# T\n\nprose\n\n```\n| not | a table |\n|---|---|\n```\n\n{table}\nafter\n"
    blocks = split_blocks(text)
    assert [b[0] for b in blocks] == [False, True, False]
    assert blocks[1][1] == table and "| not | a table |" in blocks[0][1]
    assert "".join(b for _, b in blocks) == text
    assert widest_rows(table).count("\n") <= 2 + 3  # header, rule, a row per column at most
    console = Console(width=4096)
    lines = console.render_lines(Markdown(table), console.options, pad=False)
    full = max(Segment.get_line_length(ln) for ln in lines)
    measured = NaturalWidth(table).__rich_measure__(console, console.options)
    assert measured.minimum == measured.maximum == full


def test_earlier_attempts_count_each_from_start_to_end_or_last_event(tmp_path) -> None:
    """Attempt 1 (launched at 95) ends at 150; attempt 2 dies without an end event (its last
    event at 230); attempt 3, the current one, is not counted."""
    import json

    from amc_tui.run.events import earlier_attempts_s

    events = [
        {"t": 100, "kind": "start"}, {"t": 140, "kind": "epoch"}, {"t": 150, "kind": "end"},
        {"t": 200, "kind": "start"}, {"t": 230, "kind": "epoch"},
        {"t": 300, "kind": "start"}, {"t": 330, "kind": "epoch"},
    ]  # fmt: skip
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert earlier_attempts_s(path, before=299.0, first_began=95.0) == 55.0 + 30.0
    assert earlier_attempts_s(path, before=float("inf")) == 50.0 + 30.0 + 30.0
    assert earlier_attempts_s(tmp_path / "missing.jsonl", before=299.0) == 0.0
