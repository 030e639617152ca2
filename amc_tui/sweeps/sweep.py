"""A sweep file: one base config, the keys to vary, and how many seeds to run per point.

Parsing resolves and validates everything up front (every planned point's config included), so
a bad sweep is refused with one line before any run directory exists. Points come from a grid,
from seeded random draws, or one at a time from an Optuna study kept in a journal file in the
group's folder (so a sweep survives restarts). Optuna is imported only by the Optuna helpers.

    base = "configs/demo.toml"     # relative to this file's folder, else the workspace
    notes = "does shuffling help?"
    [train]                        # inline config tables, merged over the base
    epochs = 20
    [sweep]
    strategy = "grid"              # grid | random | optuna
    repeats = 3                    # seeds train.seed + 0, 1, 2 of each point
    metric = "val.acc_combined"
    [sweep.axes]
    "data.shuffle" = [true, false]
    "train.lr" = { min = 1e-4, max = 1e-2, log = true }   # random/optuna only
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import random
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

from amc_tui import contract
from amc_tui.config import TABLES, Config, ConfigError, from_dict, nearest, parse_toml
from amc_tui.errors import UserError
from amc_tui.names import check_name

if TYPE_CHECKING:  # optuna is heavy: imported only inside the Optuna helpers
    import optuna  # optuna: only for an Optuna sweep

STRATEGIES = ("grid", "random", "optuna")
SWEEP_KEYS = ("strategy", "repeats", "metric", "max_parallel", "trials", "seed", "axes")
RANGE_KEYS = ("min", "max", "log", "int")
FILE_KEYS = ("base", "name", "notes", "phase", "tags", "sweep", *TABLES)
METRIC_SPLITS = ("val", "train")  # never select on the test split
MAX_RUNS = 200  # more needs allow_many (a typo in an axis can plan thousands of runs)
HARD_MAX_RUNS = 10_000  # refused even with allow_many: expanding them would hang the CLI
OPTUNA_FILE = "optuna.journal"
FLOAT_DIGITS = 4  # random draws are rounded to this many significant digits


class SweepError(UserError):
    """A sweep file problem, as one line fit for stderr."""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Range:
    """A continuous (or integer) interval to draw from; `log` draws uniformly in log space."""

    min: float
    max: float
    log: bool = False
    int: bool = False


@dataclass(frozen=True)
class Axis:
    """One dotted config key and either its list of values or its range."""

    key: str
    values: tuple[Any, ...] | None = None
    range: Range | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.range is not None:
            return {"key": self.key, **dataclasses.asdict(self.range)}
        return {"key": self.key, "values": list(self.values or ())}


@dataclass(frozen=True)
class Point:
    """One combination of axis values; `label` reads `train.lr=0.001, data.shuffle=false`."""

    index: int
    values: dict[str, Any] = field(hash=False)
    label: str = ""


@dataclass(frozen=True)
class SweepRun:
    """One run to start: a point, its repeat number k and its seed (point seed + k)."""

    point: Point
    repeat: int
    seed: int
    config: Config = field(hash=False)


@dataclass
class Sweep:
    """A parsed, validated sweep. `points()` and `runs()` are precomputed for grid and random;
    Optuna sweeps get their points from `ask_point` one trial at a time."""

    name: str
    source: str
    base: Path | None
    base_config: Config
    notes: str
    strategy: str
    repeats: int
    metric: str
    max_parallel: int
    trials: int | None
    seed: int
    axes: tuple[Axis, ...]
    _points: list[Point] = field(default_factory=list, repr=False)
    _configs: list[Config] = field(default_factory=list, repr=False)

    @property
    def adaptive(self) -> bool:
        """True when points are chosen from earlier results (Optuna), not planned up front."""
        return self.strategy == "optuna"

    @property
    def n_points(self) -> int:
        return int(self.trials or 0) if self.adaptive else len(self._points)

    @property
    def n_runs(self) -> int:
        return self.n_points * self.repeats

    @property
    def direction(self) -> str:
        return "minimize" if contract.lower_is_better(self.metric) else "maximize"

    def points(self) -> list[Point]:
        if self.adaptive:
            raise ValueError("an optuna sweep has no planned points: use ask_point")
        return list(self._points)

    def runs(self) -> list[SweepRun]:
        """Every planned run, point by point, repeats in order (seed = point seed + k)."""
        if self.adaptive:
            raise ValueError("an optuna sweep has no planned runs: use ask_point")
        return [
            run
            for point, cfg in zip(self._points, self._configs, strict=True)
            for run in self.repeat_runs(point, cfg)
        ]

    def repeat_runs(self, point: Point, cfg: Config | None = None) -> list[SweepRun]:
        """The `repeats` runs of one point (an Optuna trial's point included)."""
        cfg = cfg if cfg is not None else self.config_for(point.values, point.label)
        out = []
        for k in range(self.repeats):
            seed = cfg.train.seed + k
            run_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed))
            out.append(SweepRun(point, k, seed, run_cfg))
        return out

    def point(self, index: int, values: dict[str, Any]) -> Point:
        return Point(index, dict(values), point_label(values))

    def config_for(self, values: dict[str, Any], label: str | None = None) -> Config:
        """The base config with `values` set; a ConfigError names the point and its keys."""
        try:
            return _config_with(self.base_config, values)
        except ConfigError as e:
            what = label if label is not None else point_label(values)
            raise SweepError(f"{self.source}: point ({what}): {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """The resolved sweep as plain data (for a group's record on disk)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("base_config", "_points", "_configs"):
            del out[key]
        out.update(base=str(self.base) if self.base else None, n_points=self.n_points,
                   n_runs=self.n_runs, axes=[a.to_dict() for a in self.axes])  # fmt: skip
        return out


# --------------------------------------------------------------------------- values and keys


def format_value(value: Any) -> str:
    """A value as a person writes it in TOML: true/false, 0.001, adamw, [0.8, 0.1, 0.1]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.{FLOAT_DIGITS}g}"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def point_label(values: dict[str, Any]) -> str:
    """`key=value, key=value` in axis order; `base` for a point with no axes."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in values.items()) or "base"


def axis_keys() -> list[str]:
    """Every dotted key an axis may name (dict-valued keys also take `key.sub`)."""
    out = []
    for table, cls in TABLES.items():
        for f in dataclasses.fields(cls):
            out.append(f"{table}.{f.name}")
    out += ["loss.weights.mod", "loss.weights.snr"]
    return out


def _key_type(key: str) -> Any:
    parts = key.split(".")
    tp = typing.get_type_hints(TABLES[parts[0]])[parts[1]]
    if len(parts) > 2:
        tp = get_args(tp)[1] if get_origin(tp) is dict else Any
    return tp


def _check_key(key: str, source: str) -> None:
    valid = axis_keys()
    if key in valid or key.startswith("model.backbone_kwargs.") and key.count(".") == 2:
        return
    near = nearest(key, valid)
    hint = f"; did you mean {near!r}?" if near else "; axes name table.key, e.g. train.lr"
    raise SweepError(f"{source}: unknown key {key!r} in [sweep.axes]{hint}")


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = copy.deepcopy(value)


def _config_with(base: Config, values: dict[str, Any]) -> Config:
    """`base` with each dotted key set, validated by config.from_dict like any config file.
    Built from the resolved base, so `loss.weights.mod` keeps the other weight."""
    raw = base.to_dict()
    raw["name"] = ""  # a group's runs get their own names
    for key, value in values.items():
        _set(raw, key, value)
    return from_dict(raw)


# --------------------------------------------------------------------------- parsing


def load_sweep(
    path: str | Path, workspace: str | Path | None = None, *, allow_many: bool = False
) -> Sweep:
    """Read and validate a sweep file; `base` is looked up beside it, then in `workspace`."""
    p = Path(path)
    if not p.is_file():
        raise SweepError(f"sweep file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SweepError(f"cannot read sweep file {p}: {e}") from None
    return loads_sweep(
        text, str(p), folder=p.parent, workspace=workspace, allow_many=allow_many, name=p.stem
    )


def loads_sweep(text: str, source: str = "<string>", **kw: Any) -> Sweep:
    """`sweep_from_dict` of TOML text (keywords: folder, workspace, allow_many, name)."""
    return sweep_from_dict(parse_toml(text, source), source, **kw)


def _find_base(base: Any, source: str, folder: Path | None, workspace: Path | None) -> Path:
    if not isinstance(base, str) or not base:
        raise SweepError(f"{source}: base must be the path of a config file, got {base!r}")
    p = Path(base).expanduser()
    if p.is_absolute():
        tried = [p]
    else:
        tried = [root / p for root in (folder, workspace) if root is not None] or [p]
    for cand in tried:
        if cand.is_file():
            return cand
    where = " or ".join(str(c) for c in dict.fromkeys(tried))
    raise SweepError(f"{source}: base config not found: {base} (looked for {where})")


def _known(table: dict[str, Any], valid: tuple[str, ...], where: str, src: str) -> None:
    for key in table:
        if key not in valid:
            near = nearest(str(key), list(valid))
            hint = f"did you mean {near!r}?" if near else f"valid keys: {', '.join(valid)}"
            raise SweepError(f"{src}: unknown key {key!r} {where}; {hint}")


def _int_opt(sweep: dict[str, Any], key: str, default: int | None, least: int, src: str) -> Any:
    value = sweep.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise SweepError(f"{src}: [sweep] {key} must be an integer >= {least}, got {value!r}")
    return value


def _parse_metric(value: Any, src: str) -> str:
    split, _, name = str(value).partition(".") if isinstance(value, str) else ("", "", "")
    if split not in METRIC_SPLITS or name not in contract.METRICS:
        raise SweepError(
            f"{src}: [sweep] metric must be val.<metric> or train.<metric> with <metric> one of "
            f"{', '.join(contract.METRICS)}, got {value!r}"
        )
    return str(value)


def _parse_range(key: str, table: dict[str, Any], src: str) -> Range:
    def bad(msg: str) -> SweepError:
        return SweepError(f"{src}: [sweep.axes] {key}: {msg}")

    _known(table, RANGE_KEYS, f"in the range of {key}", src)
    lo, hi = table.get("min"), table.get("max")
    for which, v in (("min", lo), ("max", hi)):
        if not contract.is_number(v):
            raise bad(f"range {which} must be a number, got {v!r}")
    for flag in ("log", "int"):
        if not isinstance(table.get(flag, False), bool):
            raise bad(f"{flag} must be true/false")
    tp = _key_type(key)
    if tp not in (int, float, Any):
        raise bad(f"{key} is not a number key; give a list of values instead")
    if tp is int and table.get("int") is False:
        raise bad(f"{key} takes integers: drop int = false")
    is_int = bool(table.get("int", tp is int))
    if is_int and not (float(lo).is_integer() and float(hi).is_integer()):
        raise bad("an int range needs whole min and max")
    if not lo < hi:
        raise bad(f"range min {lo} must be below max {hi}")
    if table.get("log", False) and lo <= 0:
        raise bad(f"a log range needs min > 0, got {lo}")
    if is_int:
        return Range(int(lo), int(hi), bool(table.get("log", False)), True)
    return Range(float(lo), float(hi), bool(table.get("log", False)), False)


def _parse_axis(key: Any, value: Any, strategy: str, src: str) -> Axis:
    if not isinstance(key, str):
        raise SweepError(f"{src}: [sweep.axes] keys must be dotted config keys, got {key!r}")
    _check_key(key, src)
    if isinstance(value, list):
        if not value:
            raise SweepError(f"{src}: [sweep.axes] {key} has no values")
        seen = [json.dumps(v, sort_keys=True, default=str) for v in value]
        dup = next((v for i, v in enumerate(value) if seen[i] in seen[:i]), None)
        if len(set(seen)) != len(seen):
            raise SweepError(f"{src}: [sweep.axes] {key} lists {format_value(dup)} twice")
        return Axis(key, tuple(value))
    if isinstance(value, dict):
        if strategy == "grid":
            raise SweepError(
                f"{src}: [sweep.axes] {key}: a range needs strategy random or optuna; "
                f"grid needs a list of values"
            )
        return Axis(key, range=_parse_range(key, value, src))
    want = "a list of values" + ("" if strategy == "grid" else " or a range { min, max }")
    raise SweepError(f"{src}: [sweep.axes] {key} must be {want}, got {format_value(value)}")


def _merge(base: dict[str, Any], inline: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in inline.items():
        if key in TABLES and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _base_config(
    raw: dict[str, Any], src: str, folder: Path | None, workspace: Path | None
) -> tuple[Path | None, Config]:
    inline = {k: v for k, v in raw.items() if k in TABLES or k in ("phase", "tags")}
    base_path, base_raw = None, {}
    if "base" in raw:
        base_path = _find_base(raw["base"], src, folder, workspace)
        try:
            base_raw = parse_toml(base_path.read_text(encoding="utf-8"), str(base_path))
        except (OSError, UnicodeDecodeError) as e:
            raise SweepError(f"{src}: cannot read base config {base_path}: {e}") from None
        try:
            from_dict(base_raw)
        except ConfigError as e:
            raise SweepError(f"{base_path}: {e}") from None
    elif not inline:
        raise SweepError(f'{src}: name a base config (base = "configs/x.toml") or config tables')
    try:
        return base_path, from_dict(_merge(base_raw, inline))
    except ConfigError as e:
        raise SweepError(f"{src}: {e}") from None


def _check_values(sweep: Sweep, src: str) -> None:
    """Each listed value and each range end, alone on the base, so an error names its key."""
    for axis in sweep.axes:
        candidates = axis.values if axis.range is None else (axis.range.min, axis.range.max)
        for value in candidates or ():
            try:
                _config_with(sweep.base_config, {axis.key: value})
            except ConfigError as e:
                raise SweepError(
                    f"{src}: [sweep.axes] {axis.key} = {format_value(value)}: {e}"
                ) from None


def sweep_from_dict(
    raw: dict[str, Any],
    source: str = "<string>",
    *,
    folder: str | Path | None = None,
    workspace: str | Path | None = None,
    allow_many: bool = False,
    name: str = "sweep",
) -> Sweep:
    """Validate a parsed sweep file and plan its points (all checks before anything runs)."""
    src = source
    _known(raw, FILE_KEYS, "at top level", src)
    fold = Path(folder) if folder is not None else None
    ws = Path(workspace) if workspace is not None else None
    sweep_raw = raw.get("sweep")
    if not isinstance(sweep_raw, dict):
        raise SweepError(f"{src}: a sweep file needs a [sweep] table with [sweep.axes]")
    _known(sweep_raw, SWEEP_KEYS, "in [sweep]", src)
    strategy = sweep_raw.get("strategy", "grid")
    if strategy not in STRATEGIES:
        raise SweepError(
            f"{src}: [sweep] strategy must be {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    repeats = _int_opt(sweep_raw, "repeats", 1, 1, src)
    max_parallel = _int_opt(sweep_raw, "max_parallel", 0, 0, src)
    metric = _parse_metric(sweep_raw.get("metric", contract.DEFAULT_SELECT), src)
    if strategy == "grid":
        for key in ("trials", "seed"):
            if key in sweep_raw:
                raise SweepError(f"{src}: [sweep] {key} applies to strategy random or optuna")
        trials, seed = None, 0
    else:
        if "trials" not in sweep_raw:
            raise SweepError(f"{src}: [sweep] strategy {strategy} needs trials = N (>= 1)")
        trials = _int_opt(sweep_raw, "trials", None, 1, src)
        seed = sweep_raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SweepError(f"{src}: [sweep] seed must be an integer, got {seed!r}")
    axes_raw = sweep_raw.get("axes", {})
    if not isinstance(axes_raw, dict):
        raise SweepError(f'{src}: [sweep.axes] must be a table of "table.key" = [values]')
    if not axes_raw and (repeats == 1 or strategy != "grid"):
        raise SweepError(
            f'{src}: [sweep.axes] is empty: name a key to vary, e.g. "train.lr" = [1e-4, 1e-3]'
        )
    axes = tuple(_parse_axis(k, v, strategy, src) for k, v in axes_raw.items())
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise SweepError(f"{src}: notes must be a string")
    sweep_name = raw.get("name", name)

    try:
        check_name(sweep_name if isinstance(sweep_name, str) else "")
    except ValueError as e:
        raise SweepError(f"{src}: name: {e}") from None
    base_path, base_cfg = _base_config(raw, src, fold, ws)
    sweep = Sweep(sweep_name, src, base_path, base_cfg, notes, strategy, repeats, metric,
                  max_parallel, trials, seed, axes)  # fmt: skip
    _check_values(sweep, src)
    _check_size(sweep, allow_many, src)
    if not sweep.adaptive:
        sweep._points = _plan(sweep)
        sweep._configs = [sweep.config_for(p.values, p.label) for p in sweep._points]
    return sweep


def _check_size(sweep: Sweep, allow_many: bool, src: str) -> None:
    if sweep.strategy == "grid":
        n_points = math.prod(len(a.values or ()) for a in sweep.axes)
    else:
        n_points = int(sweep.trials or 0)
    n = n_points * sweep.repeats
    what = f"{n} runs ({n_points} points x {sweep.repeats} repeats)"
    if n > HARD_MAX_RUNS:
        raise SweepError(f"{src}: {what} is over the hard limit of {HARD_MAX_RUNS}")
    if n > MAX_RUNS and not allow_many:
        raise SweepError(f"{src}: {what} is over {MAX_RUNS}; confirm with --allow-many")


# --------------------------------------------------------------------------- planning


def _draw(axis: Axis, rng: random.Random) -> Any:
    if axis.range is None:
        return copy.deepcopy(rng.choice(axis.values or ()))
    r = axis.range
    if r.log:
        x = math.exp(rng.uniform(math.log(r.min), math.log(r.max)))
    else:
        x = rng.uniform(r.min, r.max)
    if r.int:
        return int(min(r.max, max(r.min, round(x))))
    return float(f"{min(r.max, max(r.min, x)):.{FLOAT_DIGITS}g}")


def _plan(sweep: Sweep) -> list[Point]:
    keys = [a.key for a in sweep.axes]
    if sweep.strategy == "grid":
        combos = itertools.product(*(a.values or () for a in sweep.axes))
        rows = [dict(zip(keys, combo, strict=True)) for combo in combos]
    else:
        rng = random.Random(sweep.seed)
        rows = [{a.key: _draw(a, rng) for a in sweep.axes} for _ in range(int(sweep.trials or 0))]
    return [sweep.point(i, values) for i, values in enumerate(rows)]


# --------------------------------------------------------------------------- optuna


def _primitive(values: tuple[Any, ...]) -> bool:
    return all(v is None or isinstance(v, bool | int | float | str) for v in values)


def optuna_study(group_dir: str | Path, sweep: Sweep) -> optuna.Study:
    """The sweep's study, created or reopened from `group_dir`/optuna.journal (a journal
    file: several processes may ask and tell, and a restart continues where it stopped)."""
    if not sweep.adaptive:
        raise ValueError(f"strategy {sweep.strategy} has no study")
    import optuna  # optuna: only for an Optuna sweep
    from optuna.storages import JournalStorage  # optuna: only for an Optuna sweep
    from optuna.storages.journal import JournalFileBackend  # optuna: only for an Optuna sweep

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(Path(group_dir) / OPTUNA_FILE)))
    sampler = optuna.samplers.TPESampler(seed=sweep.seed)
    return optuna.create_study(storage=storage, study_name=sweep.name, sampler=sampler,
                               direction=sweep.direction, load_if_exists=True)  # fmt: skip


def ask_point(study: optuna.Study, sweep: Sweep) -> tuple[int, dict[str, Any]]:
    """A new trial's number and axis values. The sampler is reseeded from the sweep seed and
    the trial count, so a reopened study does not replay the draws of the first process and
    the same sweep gives the same points. A point whose config is invalid is told as failed
    and raised."""
    import optuna  # optuna: only for an Optuna sweep

    n_before = len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=sweep.seed + n_before)
    trial = study.ask()
    for axis in sweep.axes:
        r = axis.range
        if r is not None and r.int:
            trial.suggest_int(axis.key, int(r.min), int(r.max), log=r.log)
        elif r is not None:
            trial.suggest_float(axis.key, float(r.min), float(r.max), log=r.log)
        elif _primitive(axis.values or ()):
            trial.suggest_categorical(axis.key, list(axis.values or ()))
        else:  # lists and tables are not categorical choices: choose their JSON text
            trial.suggest_categorical(axis.key, [json.dumps(v) for v in axis.values or ()])
    values = trial_values(sweep, trial.params)
    try:
        sweep.config_for(values, f"trial {trial.number}: {point_label(values)}")
    except SweepError:
        tell(study, trial.number, None)
        raise
    return trial.number, values


def trial_values(sweep: Sweep, params: dict[str, Any]) -> dict[str, Any]:
    """Axis values from a trial's params (`FrozenTrial.params`), in axis order."""
    out = {}
    for axis in sweep.axes:
        if axis.key not in params:
            continue
        value = params[axis.key]
        if axis.range is None and not _primitive(axis.values or ()):
            value = json.loads(value)
        out[axis.key] = value
    return out


def tell(study: optuna.Study, trial_number: int, value: float | None) -> None:
    """Report a trial's result (the point's metric, e.g. the mean over its repeats); None or a
    non-finite value marks it failed. Telling a finished trial again does nothing."""
    from optuna.trial import TrialState  # optuna: only for an Optuna sweep

    if value is None or not contract.is_number(value):
        study.tell(trial_number, state=TrialState.FAIL, skip_if_finished=True)
    else:
        study.tell(trial_number, float(value), skip_if_finished=True)


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials told complete or failed, in trial order."""
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
