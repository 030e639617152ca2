"""Sweep files: parsing, planning (grid, random), repeats/seeds, refusals, and the Optuna study."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from amc_tui.config import load_config
from amc_tui.errors import UserError
from amc_tui.sweeps.sweep import (
    MAX_RUNS,
    OPTUNA_FILE,
    ask_point,
    finished_trials,
    load_sweep,
    loads_sweep,
    optuna_study,
    point_label,
    tell,
    trial_values,
)

BASE = '[data]\npath = "data/x.h5"\nsplit_seed = 7\n[train]\nseed = 10\nepochs = 3\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sweep_text(axes: str, sweep: str = "", top: str = "") -> str:
    return f'{top}\n[data]\npath = "data/x.h5"\n[sweep]\n{sweep}\n[sweep.axes]\n{axes}\n'


def refused(text: str) -> str:
    with pytest.raises(UserError) as exc:
        loads_sweep(text, "s.toml")
    msg = str(exc.value)
    assert exc.value.exit_code == 2 and "\n" not in msg and msg.startswith("s.toml")
    return msg


def test_grid_with_base_beside_the_file_expands_points_and_seeded_repeats(tmp_path: Path) -> None:
    write(tmp_path / "sweeps" / "base.toml", BASE)
    path = write(
        tmp_path / "sweeps" / "shuffle.toml",
        'base = "base.toml"\nnotes = "does shuffling help?"\n[train]\nepochs = 5\n'
        "[sweep]\nrepeats = 3\nmax_parallel = 2\n[sweep.axes]\n"
        '"data.shuffle" = [true, false]\n"train.lr" = [1e-3, 3e-4]\n',
    )
    before = sorted(p.name for p in tmp_path.rglob("*"))
    s = load_sweep(path, workspace=tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # parsing writes nothing
    assert (s.name, s.strategy, s.repeats, s.max_parallel) == ("shuffle", "grid", 3, 2)
    assert s.notes == "does shuffling help?" and s.metric == "val.acc_combined"
    assert s.base == tmp_path / "sweeps" / "base.toml"
    points = s.points()
    assert [p.values for p in points] == [
        {"data.shuffle": True, "train.lr": 1e-3},
        {"data.shuffle": True, "train.lr": 3e-4},
        {"data.shuffle": False, "train.lr": 1e-3},
        {"data.shuffle": False, "train.lr": 3e-4},
    ]
    assert points[2].label == "data.shuffle=false, train.lr=0.001"
    runs = s.runs()
    assert len(runs) == s.n_runs == 12
    assert [(r.point.index, r.repeat, r.seed) for r in runs[:4]] == [
        (0, 0, 10), (0, 1, 11), (0, 2, 12), (1, 0, 10)
    ]  # fmt: skip
    for r in runs:
        assert r.config.train.seed == r.seed
        assert r.config.data.split_seed == 7  # the data split never varies with the seed
        assert r.config.train.epochs == 5  # inline table over the base
        assert r.config.data.shuffle is r.point.values["data.shuffle"]
        assert r.config.train.lr == r.point.values["train.lr"]
        assert r.config.name == ""


def test_base_falls_back_to_the_workspace(tmp_path: Path) -> None:
    write(tmp_path / "configs" / "x.toml", BASE)
    path = write(
        tmp_path / "sweeps" / "s.toml",
        'base = "configs/x.toml"\n[sweep]\n[sweep.axes]\n"model.dropout" = [0.1, 0.2]\n',
    )
    s = load_sweep(path, workspace=tmp_path)
    assert s.base == tmp_path / "configs" / "x.toml"
    assert s.base_config == load_config(tmp_path / "configs" / "x.toml")
    with pytest.raises(UserError, match=r"base config not found: configs/x.toml \(looked for"):
        load_sweep(path, workspace=tmp_path / "elsewhere")


def test_sub_keys_of_table_values_keep_their_siblings() -> None:
    s = loads_sweep(
        sweep_text('"loss.weights.mod" = [1.0, 2.5]\n"model.backbone_kwargs.depth" = [2]')
    )
    cfgs = [r.config for r in s.runs()]
    assert [c.loss.weights for c in cfgs] == [{"mod": 1.0, "snr": 1.0}, {"mod": 2.5, "snr": 1.0}]
    assert cfgs[0].model.backbone_kwargs == {"depth": 2}


def test_repeats_of_one_config_need_no_axes() -> None:
    s = loads_sweep('[data]\npath = "d.h5"\n[sweep]\nrepeats = 4\n')
    assert [p.label for p in s.points()] == ["base"]
    assert [r.seed for r in s.runs()] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("axes", "sweep", "expect"),
    [
        ('"train.lrr" = [1]', "", "unknown key 'train.lrr' in [sweep.axes]; did you mean 'train.lr'?"),
        ('"trian.lr" = [1]', "", "did you mean 'train.lr'?"),
        ('"train.lr" = [1e-3, -1]', "", "[sweep.axes] train.lr = -1: [train] lr must be in (0, 10]"),
        ('"data.shuffle" = [true, "no"]', "", "[sweep.axes] data.shuffle = no: [data] shuffle must be true/false"),
        ("", "", "[sweep.axes] is empty"),
        ('"train.lr" = []', "", "train.lr has no values"),
        ('"train.lr" = [1e-3, 1e-3]', "", "lists 0.001 twice"),
        ('"train.lr" = 1e-3', "", "train.lr must be a list of values, got 0.001"),
        ('"train.lr" = { min = 1e-4, max = 1e-2 }', "", "a range needs strategy random or optuna"),
        ('"train.lr" = 1e-3', 'strategy = "random"\ntrials = 2', "must be a list of values or a range"),
        ('"train.lr" = { min = 1e-4 }', 'strategy = "random"\ntrials = 2', "range max must be a number"),
        ('"train.lr" = { min = 1, max = 0.1 }', 'strategy = "random"\ntrials = 2', "range min 1 must be below max 0.1"),
        ('"train.lr" = { min = 0, max = 1, log = true }', 'strategy = "optuna"\ntrials = 2', "a log range needs min > 0"),
        ('"train.lr" = { min = 1e-4, max = 1, step = 2 }', 'strategy = "random"\ntrials = 2', "unknown key 'step' in the range of train.lr"),
        ('"data.shuffle" = { min = 0, max = 1 }', 'strategy = "random"\ntrials = 2', "data.shuffle is not a number key"),
        ('"train.epochs" = { min = 1.5, max = 4 }', 'strategy = "random"\ntrials = 2', "an int range needs whole min and max"),
        ('"train.lr" = { min = 1e-4, max = 1e-2 }', 'strategy = "random"\ntrials = 0', "[sweep] trials must be an integer >= 1, got 0"),
        ('"train.lr" = { min = 1e-4, max = 1e-2 }', 'strategy = "optuna"', "strategy optuna needs trials"),
        ('"train.lr" = [1e-3]', "repeats = 0", "[sweep] repeats must be an integer >= 1, got 0"),
        ('"train.lr" = [1e-3]', "max_parallel = -1", "max_parallel must be an integer >= 0"),
        ('"train.lr" = [1e-3]', "trials = 3", "trials applies to strategy random or optuna"),
        ('"train.lr" = [1e-3]', 'strategy = "bayes"', "strategy must be grid, random, optuna"),
        ('"train.lr" = [1e-3]', "repeat = 3", "unknown key 'repeat' in [sweep]; did you mean 'repeats'?"),
        ('"train.lr" = [1e-3]', 'metric = "val.accuracy"', "metric must be val.<metric> or train.<metric>"),
        ('"train.lr" = [1e-3]', 'metric = "test.acc_combined"', "metric must be val.<metric>"),
        ('"train.lr" = [1e-3]', 'metric = "acc_combined"', "metric must be val.<metric>"),
    ],
)  # fmt: skip
def test_bad_sweeps_are_refused_in_one_line(axes: str, sweep: str, expect: str) -> None:
    assert expect in refused(sweep_text(axes, sweep))


def test_a_combination_that_fails_validation_names_the_point() -> None:
    msg = refused(sweep_text('"data.snr_min" = [0, 10]\n"data.snr_max" = [4, 20]'))
    assert "point (data.snr_min=10, data.snr_max=4)" in msg and "empty SNR range" in msg


def test_file_level_mistakes_are_refused() -> None:
    assert "unknown key 'note' at top level; did you mean 'notes'?" in refused(
        sweep_text('"train.lr" = [1]', top='note = "x"')
    )
    assert "[train] lr must be in (0, 10]" in refused(
        '[train]\nlr = -1\n[sweep]\n[sweep.axes]\n"model.dropout" = [0.1]\n'
    )
    assert "needs a [sweep] table" in refused('[data]\npath = "d.h5"\n')
    assert "name a base config" in refused('[sweep]\n[sweep.axes]\n"train.lr" = [1e-3]\n')
    with pytest.raises(UserError, match="TOML syntax error"):
        loads_sweep("[sweep\n", "s.toml")


def test_a_bad_base_config_names_the_base_file(tmp_path: Path) -> None:
    write(tmp_path / "base.toml", "[train]\nlrr = 1\n")
    path = write(
        tmp_path / "s.toml", 'base = "base.toml"\n[sweep]\n[sweep.axes]\n"train.lr" = [1]\n'
    )
    with pytest.raises(
        UserError, match=r"base\.toml: unknown key 'lrr' in \[train\]; did you mean 'lr'"
    ):
        load_sweep(path)


def test_more_than_the_limit_needs_allow_many() -> None:
    axes = '"train.lr" = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3, 2e-3]\n'
    axes += '"train.batch_size" = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]\n'
    text = sweep_text(axes, "repeats = 2")
    msg = refused(text)
    assert f"220 runs (110 points x 2 repeats) is over {MAX_RUNS}" in msg
    assert loads_sweep(text, allow_many=True).n_runs == 220
    huge = sweep_text(axes + '"model.dropout" = [0.1, 0.2, 0.3, 0.4, 0.5]', "repeats = 20")
    with pytest.raises(UserError, match="hard limit"):
        loads_sweep(huge, allow_many=True)


def test_random_draws_are_seeded_and_inside_their_ranges() -> None:
    axes = (
        '"train.lr" = { min = 1e-5, max = 1e-2, log = true }\n'
        '"train.batch_size" = { min = 8, max = 64 }\n'
        '"model.dropout" = { min = 0.0, max = 0.5 }\n'
        '"train.scheduler" = ["cosine", "none"]\n'
    )
    text = sweep_text(axes, 'strategy = "random"\ntrials = 40\nseed = 3\nrepeats = 2')
    a, b = loads_sweep(text), loads_sweep(text)
    assert [p.values for p in a.points()] == [p.values for p in b.points()]
    other = loads_sweep(text.replace("seed = 3", "seed = 4"))
    assert [p.values for p in other.points()] != [p.values for p in a.points()]
    points = a.points()
    assert len(points) == 40 and a.n_runs == 80
    lrs = [p.values["train.lr"] for p in points]
    assert all(1e-5 <= v <= 1e-2 for v in lrs)
    # log-uniform: about half of the draws below the geometric midpoint
    assert 10 <= sum(v < math.sqrt(1e-5 * 1e-2) for v in lrs) <= 30
    assert all(isinstance(p.values["train.batch_size"], int) for p in points)
    assert all(8 <= p.values["train.batch_size"] <= 64 for p in points)
    assert {p.values["train.scheduler"] for p in points} == {"cosine", "none"}
    assert all(r.config.train.batch_size == r.point.values["train.batch_size"] for r in a.runs())


def test_point_labels_read_like_toml() -> None:
    assert point_label({"data.shuffle": False, "train.lr": 0.00031623, "model.arch": "resnet18",
                        "data.split": [0.8, 0.1, 0.1]}) == (
        "data.shuffle=false, train.lr=0.0003162, model.arch=resnet18, data.split=[0.8, 0.1, 0.1]"
    )  # fmt: skip
    assert point_label({}) == "base"


def test_optuna_asks_tells_and_reopens_from_the_journal(tmp_path: Path) -> None:
    axes = (
        '"train.lr" = { min = 1e-4, max = 1e-1, log = true }\n'
        '"train.batch_size" = { min = 8, max = 64, int = true }\n'
        '"data.split" = [[0.8, 0.1, 0.1], [0.6, 0.2, 0.2]]\n'
        '"data.shuffle" = [true, false]\n'
    )
    s = loads_sweep(sweep_text(axes, 'strategy = "optuna"\ntrials = 6\nrepeats = 2\nseed = 1'))
    assert s.adaptive and s.n_runs == 12 and s.direction == "maximize"
    with pytest.raises(ValueError, match="ask_point"):
        s.points()
    study = optuna_study(tmp_path, s)
    assert (tmp_path / OPTUNA_FILE).is_file()
    asked = []
    for i in range(3):
        number, values = ask_point(study, s)
        asked.append(values)
        assert number == i and list(values) == [a.key for a in s.axes]
        assert 1e-4 <= values["train.lr"] <= 1e-1 and isinstance(values["train.batch_size"], int)
        assert values["data.split"] in ([0.8, 0.1, 0.1], [0.6, 0.2, 0.2])
        runs = s.repeat_runs(s.point(number, values))
        assert [r.seed for r in runs] == [0, 1]
        assert runs[0].config.data.split == values["data.split"]
        tell(study, number, None if i == 1 else 0.1 * (i + 1))
    tell(study, 0, 0.9)  # telling a finished trial again is ignored
    reopened = optuna_study(tmp_path, s)
    done = finished_trials(reopened)
    assert [(t.number, t.state.name, t.value) for t in done] == [
        (0, "COMPLETE", 0.1), (1, "FAIL", None), (2, "COMPLETE", pytest.approx(0.3))
    ]  # fmt: skip
    assert trial_values(s, done[0].params) == asked[0]
    number, values = ask_point(reopened, s)  # a fresh process continues, not replays
    assert number == 3 and values not in asked
    (tmp_path / "copy").mkdir()
    assert (
        ask_point(optuna_study(tmp_path / "copy", s), s)[1] == asked[0]
    )  # the same sweep seed gives the same first point


def test_optuna_minimises_lower_is_better_metrics_and_fails_invalid_points(tmp_path: Path) -> None:
    axes = '"data.snr_min" = [0, 10]\n"data.snr_max" = [4, 20]\n'
    s = loads_sweep(sweep_text(axes, 'strategy = "optuna"\ntrials = 30\nmetric = "val.loss"'))
    assert s.direction == "minimize"
    study = optuna_study(tmp_path, s)
    assert study.direction.name == "MINIMIZE"
    failed = 0
    for _ in range(12):
        try:
            number, _values = ask_point(study, s)
        except UserError as e:
            assert "data.snr_min=10, data.snr_max=4" in str(e)
            failed += 1
        else:
            tell(study, number, 1.0)
    assert failed >= 1
    states = [t.state.name for t in finished_trials(study)]
    assert states.count("FAIL") == failed and len(states) == 12
