"""Run configuration: the schema of DESIGN.md section 2 as typed code.

Every key has a default, so a config file only names what differs. Loading validates
everything and raises `ConfigError` with one line that says what is wrong and how to fix it;
the CLI turns that into exit code 2. No torch/timm here: the arch check uses an alias table.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from amc_tui.archs import ARCH_ALIASES, TIMM_FAMILIES, check_arch, resolve_arch  # noqa: F401
from amc_tui.contract import HEALTH_RULES, METRICS
from amc_tui.data.classes import DEFAULT_SPLIT, SNR_MAX, SNR_MIN, SNR_STEP, resolve_classes
from amc_tui.errors import ConfigError, UserError  # noqa: F401
from amc_tui.names import check_name  # local: names imports nothing heavy either

# --------------------------------------------------------------------------- schema

# Each table's docstring holds one `key: meaning` line per key: docs/CONFIG.md is generated from
# them, the types, the defaults and validate()'s messages (docs/make_config_reference.py).

# Upper bounds that catch a typo (an extra zero) before it becomes a week-long run.
MAX_EPOCHS = 100_000
MAX_BATCH = 65_536


@dataclass
class DataConfig:
    """[data]: which frames of which RadioML file, and how they are split.

    path: the RadioML 2018.01A HDF5 file, relative to the workspace (made absolute in the run)
    classes: "digital" (the 17 digital classes), "all" (24) or a list of class names
    snr_min: lowest SNR in dB to train and test on (inclusive)
    snr_max: highest SNR in dB to train and test on (inclusive)
    split: train / val / test shares, stratified per (class, SNR) cell
    split_seed: seed of the split and the frames_per_cell choice: the same on every machine
    shuffle: reshuffle the training order every epoch (seeded by train.seed and the epoch)
    frames_per_cell: at most this many frames per (class, SNR) cell, for quick runs; 0 = all
    in_memory: copy the selection into RAM; "auto" = when it fits half the available RAM
        (at most 32 GiB), else read it from the file
    ram_dtype: dtype of the in-memory copy; "float16" halves its RAM
    """

    path: str = "data/synthetic.h5"
    classes: str | list[str] = "digital"
    snr_min: int = -20
    snr_max: int = 30
    split: list[float] = field(default_factory=lambda: list(DEFAULT_SPLIT))
    split_seed: int = 42
    shuffle: bool = True
    frames_per_cell: int = 0
    in_memory: Literal["auto"] | bool = "auto"
    ram_dtype: Literal["float32", "float16"] = "float32"


@dataclass
class ImageConfig:
    """[image]: how each I/Q frame becomes a constellation image (a 2-D histogram).

    size: image width and height in pixels
    channels: 1, or 2-3 for the same histogram also at range/2 and range/4 (zooms on the centre)
    range: half-width of the I/Q window, after each frame is scaled to unit power
    normalize: how counts become pixels: "log1p" (log1p(count) / log1p(samples), one scale
        for every image), "density" (the samples' probability density on the unit-power
        plane: count / (samples x bin area)) or "max" (count / the image's own max: the
        frame's count scale is lost; logs so)
    """

    size: int = 224
    channels: int = 1
    range: float = 3.0
    normalize: Literal["log1p", "density", "max"] = "log1p"


@dataclass
class ModelConfig:
    """[model]: the timm backbone (no pretrained weights) with a modulation and an SNR head.

    arch: an alias (swin_tiny, swin_small, swin_base, resnet18/34/50, vit_tiny, vit_small) or
        a timm model name
    dropout: dropout before each of the two heads
    backbone_kwargs: passed to timm.create_model, e.g. { window_size = 4, embed_dim = 24 }
    weights: seed the model from a weights file, or a run (name, id or directory: its last.pt,
        else best.pt); made an absolute file when the run is created
    """

    arch: str = "swin_tiny"
    dropout: float = 0.3
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str = ""


@dataclass
class TrainConfig:
    """[train]: the optimisation.

    epochs: epochs to train
    batch_size: frames per step, per training process
    lr: learning rate
    weight_decay: AdamW weight decay (never applied to the loss weighting's parameters)
    optimizer: the optimizer (AdamW)
    scheduler: after the warm-up: "cosine" to zero, "plateau" (halve after 3 epochs without
        improvement of select_metric) or "none" (constant)
    warmup_epochs: epochs of linear learning-rate warm-up
    amp: mixed precision; "auto" = bf16 on CUDA, off on the CPU (fp16 is off on the CPU too)
    grad_clip: clip the gradient norm to this; 0 = off
    seed: seeds the model's initialisation and the training order
    select_metric: the metric that picks the best epoch (best.pt, the final test export)
    early_stop_patience: stop after this many epochs without a better select_metric; 0 = off
    max_steps_per_epoch: at most this many steps per epoch, for quick runs; 0 = all
    compile: torch.compile the model
    compile_mode: torch.compile mode; "reduce-overhead" and "max-autotune" replay CUDA graphs,
        which want every training batch the same shape (drop_last)
    drop_last: drop the epoch's last, smaller batch; false: it is trained on too
    channels_last: channels_last memory format; "auto" = on CUDA
    threads: torch CPU threads; 0 = this trainer's share of the cores (usable cores / live
        CPU trainers of the workspace)
    lr_scale: "linear" multiplies lr by the number of training processes; "none" keeps it
    """

    epochs: int = 100
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-5
    optimizer: Literal["adamw"] = "adamw"
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    warmup_epochs: int = 0
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"
    grad_clip: float = 0.0
    seed: int = 0
    select_metric: str = "val.acc_combined"
    early_stop_patience: int = 0
    max_steps_per_epoch: int = 0
    compile: bool = False
    compile_mode: Literal["default", "max-autotune", "reduce-overhead"] = "default"
    drop_last: bool = True
    channels_last: Literal["auto"] | bool = "auto"
    threads: int = 0
    lr_scale: Literal["none", "linear"] = "none"


@dataclass
class LossConfig:
    """[loss]: the two task losses and how they are weighted.

    weighting: "uncertainty" (learned, Kendall et al. 2018), "fixed" (the weights below),
        "equal" (1 and 1) or "dwa" (dynamic weight averaging, Liu et al. 2019)
    weights: the task weights of "fixed"
    snr_distance_weight: weight of the expected distance in SNR bins added to the SNR
        cross-entropy; 0 = cross-entropy only
    snr_distance: the distance term: expected absolute distance under the softmax
    """

    weighting: Literal["uncertainty", "fixed", "equal", "dwa"] = "uncertainty"
    weights: dict[str, float] = field(default_factory=lambda: {"mod": 1.0, "snr": 1.0})
    snr_distance_weight: float = 0.5
    snr_distance: Literal["expected_abs"] = "expected_abs"


@dataclass
class RunConfig:
    """[run]: where and how the trainer process runs.

    device: where to train; "auto" = a GPU when NVML sees one, else the CPU
    gpus: which GPUs; "auto" = free ones the queue picks (run.nproc of them), or these
        indices (one training process each)
    resume: seed a new run from a checkpoint file or a run's last.pt (else best.pt); made
        an absolute file when the run is created
    restart: "on-failure" resumes a crashed run from last.pt by itself
    max_restarts: at most this many automatic restarts
    step_log_every: training steps between two step events
    checkpoint_every: epochs between two last.pt writes (the last epoch always writes it)
    share_device: start even while another run holds the same device
    stop_grace_s: seconds from SIGTERM (the trainer checkpoints) to SIGKILL on a stop
    checkpoint_minutes: also write last.pt inside an epoch at most this often, so a kill -9
        loses at most this much training; 0 = at epoch ends only
    executor: "slurm" submits the run to Slurm with the [slurm] table; "local" runs it here
    nproc: training processes on this machine (DDP through torchrun when > 1): N GPUs, or N
        CPU processes with gloo
    stop_on: health rules that stop the run when they fire (with a checkpoint; state
        "stopped", the rule named): any of "learned-nothing", "diverged", "plateau",
        "overfitting", "data-bound"; [] = only report them (see [health])
    """

    device: str = "auto"
    gpus: Literal["auto"] | list[int] = "auto"
    resume: str = ""
    restart: Literal["never", "on-failure"] = "never"
    max_restarts: int = 2
    step_log_every: int = 50
    checkpoint_every: int = 1
    share_device: bool = False
    stop_grace_s: float = 30.0
    checkpoint_minutes: float = 10.0
    executor: Literal["local", "slurm"] = "local"
    nproc: int = 1
    stop_on: list[str] = field(default_factory=list)


@dataclass
class HealthConfig:
    """[health]: the rules the trainer checks as each epoch ends; each that fires is a
    `health` event, shown by ls, show, the app, sweeps and RUNLOG (run.stop_on may stop the
    run on it). docs/RUNS.md, "Health", states each rule.

    enabled: check the rules at all
    min_epochs: "learned-nothing" is judged from this epoch on: validation accuracy of either
        head not above chance (a one-sided binomial test at `alpha`; chance = the share of the
        split's most frequent class, 1/K when balanced), or the training loss not below its
        first epoch's
    alpha: the significance level of that test
    patience: "plateau": this many epochs without a better train.select_metric; 0 = off
    overfit_epochs: "overfitting": the validation-minus-training loss gap grew in each of
        this many epochs while the validation loss is above its best; 0 = off
    explode_factor: "diverged": an epoch's mean training loss above this many times the first
        epoch's (a NaN or inf loss always is)
    data_bound_util: "data-bound" (CUDA only): the GPU busy under this percent on average...
    data_bound_minutes: ...over this many minutes of training: the data feed is the
        bottleneck; 0 = off
    """

    enabled: bool = True
    min_epochs: int = 3
    alpha: float = 0.01
    patience: int = 5
    overfit_epochs: int = 3
    explode_factor: float = 10.0
    data_bound_util: float = 50.0
    data_bound_minutes: float = 5.0


# sbatch options amc-tui sets itself: logs, array and the time-limit signal must stay ours.
SLURM_RESERVED = ("output", "error", "array", "open-mode", "signal")


@dataclass
class SlurmConfig:
    """[slurm]: the Slurm job of a run with run.executor = "slurm"; 0 or "" leaves a key to
    Slurm's defaults.

    partition: the partition
    nodes: nodes of the job; one task per node runs torchrun
    gpus_per_node: GPUs per node, one training process each; 0 = a CPU job
    cpus_per_task: CPUs per node (the node's trainer processes and their data feed)
    mem_gb: memory per node in GB
    time_min: the job's time limit in minutes
    account: the account to charge
    qos: the quality of service
    constraint: node features the job needs
    additional: other sbatch options, e.g. { exclusive = true, mail_type = "END" }; output,
        error, array, open-mode and signal are amc-tui's own
    setup: shell lines run on each node before the trainer (module load ..., source ...)
    """

    partition: str = ""
    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_task: int = 0
    mem_gb: float = 0.0
    time_min: int = 1440
    account: str = ""
    qos: str = ""
    constraint: str = ""
    additional: dict[str, str | int | bool] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)


MIRROR_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}  # target: import name


@dataclass
class MirrorConfig:
    """[mirror]: copies of the run's history in TensorBoard and Weights & Biases, written by a
    background thread of the trainer (a mirror that fails is recorded once; the run goes on);
    `amc-tui mirror` writes them for an existing run.

    tensorboard: write TensorBoard event files to the run's tensorboard/ folder (needs
        `pip install 'amc-tui[tensorboard]'`)
    wandb: a W&B run named after the run: "offline" = written to the run's wandb/ folder for
        `wandb sync`, "online" = sent as it trains, "off" = none (needs `pip install
        'amc-tui[wandb]'`)
    wandb_project: the W&B project
    wandb_entity: the W&B user or team; "" = the account's default
    """

    tensorboard: bool = False
    wandb: Literal["off", "offline", "online"] = "off"
    wandb_project: str = "amc-tui"
    wandb_entity: str = ""


@dataclass
class Config:
    """Top level: the run's name and free text; the tables follow.

    name: the run's name; "" = an automatic adjective-noun-N
    notes: free text, shown in RUNLOG.md; the app's filter words match it
    phase: free text (e.g. "demo"), shown in RUNLOG.md and in an optional column of the app
    tags: labels, shown in RUNLOG.md and the app; the app's filter takes tag:NAME
    """

    name: str = ""
    notes: str = ""
    phase: str = ""
    tags: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    run: RunConfig = field(default_factory=RunConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    mirror: MirrorConfig = field(default_factory=MirrorConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """A stable hash of the resolved config (sorted-key JSON), 16 hex digits. [mirror] is
        left out: where a run's history is copied to never changes what it trains."""
        body = {k: v for k, v in self.to_dict().items() if k != "mirror"}
        blob = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def get(self, dotted: str) -> Any:
        """A value by dotted key, e.g. `train.lr`."""
        node: Any = self
        for part in dotted.split("."):
            node = getattr(node, part)
        return node


TABLES: dict[str, type] = {
    "data": DataConfig,
    "image": ImageConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "loss": LossConfig,
    "run": RunConfig,
    "health": HealthConfig,
    "slurm": SlurmConfig,
    "mirror": MirrorConfig,
}
TOP_KEYS = ("name", "notes", "phase", "tags")
_HINTS = {cls: typing.get_type_hints(cls) for cls in (*TABLES.values(), Config)}


# --------------------------------------------------------------------------- type checking


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(json.dumps(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return "a table"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, str(tp)
    )


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """(ok, value) with ints widened to floats where a float is expected."""
    origin = get_origin(tp)
    if tp is Any:
        return True, value
    if origin is Literal:
        return (value in get_args(tp) and type(value) in {type(a) for a in get_args(tp)}), value
    if origin in (Union, types.UnionType):
        for arm in get_args(tp):
            ok, v = _coerce(value, arm)
            if ok:
                return True, v
        return False, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        (inner,) = get_args(tp)
        out = []
        for item in value:
            ok, v = _coerce(item, inner)
            if not ok:
                return False, value
            out.append(v)
        return True, out
    if origin is dict:
        if not isinstance(value, dict):
            return False, value
        _, vt = get_args(tp)
        out_d = {}
        for k, item in value.items():
            ok, v = _coerce(item, vt)
            if not ok:
                return False, value
            out_d[k] = v
        return True, out_d
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, value
        return math.isfinite(value), float(value)
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp), value


def nearest(word: str, options: list[str]) -> str | None:
    """The closest option by spelling, with prefixes counted as close (lr_rate -> lr)."""

    def score(opt: str) -> float:
        ratio = difflib.SequenceMatcher(None, word.lower(), opt.lower()).ratio()
        if word.lower().startswith(opt.lower()) or opt.lower().startswith(word.lower()):
            ratio = max(ratio, 0.6 + 0.3 * min(len(opt), len(word)) / max(len(opt), len(word)))
        return ratio

    best = max(options, key=score, default=None)
    return best if best is not None and score(best) >= 0.4 else None


def _unknown_key(key: str, table: str | None, valid: list[str]) -> ConfigError:
    where = f"in [{table}]" if table else "at top level"
    near = nearest(key, valid)
    hint = f"; did you mean {near!r}?" if near else f"; valid keys: {', '.join(valid)}"
    return ConfigError(f"unknown key {key!r} {where}{hint}")


def _build(cls: type, raw: dict[str, Any], table: str | None) -> Any:
    hints = _HINTS[cls]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints or (cls is Config and key in TABLES):
            valid = list(TOP_KEYS) + [f"[{t}]" for t in TABLES] if cls is Config else list(hints)
            raise _unknown_key(key, table, [v.strip("[]") for v in valid])
        ok, coerced = _coerce(value, hints[key])
        if not ok:
            where = f"[{table}] " if table else ""
            raise ConfigError(
                f"{where}{key} must be {_type_name(hints[key])}, got {json.dumps(value, default=str)}"
            )
        kwargs[key] = coerced
    return cls(**kwargs)


def from_dict(raw: dict[str, Any]) -> Config:
    """Validate a parsed TOML document and fill every default."""
    top = {k: v for k, v in raw.items() if k not in TABLES}
    for key in top:
        if key not in TOP_KEYS:
            raise _unknown_key(key, None, [*TOP_KEYS, *TABLES])
    tables = {}
    for name, cls in TABLES.items():
        value = raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] must be a table, got {json.dumps(value, default=str)}")
        tables[name] = _build(cls, value, name)
    cfg = _build(Config, top, None)
    for name, obj in tables.items():
        setattr(cfg, name, obj)
    validate(cfg)
    return cfg


# --------------------------------------------------------------------------- ranges


def _range(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def validate(cfg: Config) -> None:
    """Cross-field and range checks; one ConfigError line for the first problem."""
    d, im, m, t, lo, r = cfg.data, cfg.image, cfg.model, cfg.train, cfg.loss, cfg.run
    if cfg.name:
        try:
            check_name(cfg.name)
        except ValueError as e:
            raise ConfigError(f"name: {e}") from None
    grid = f"{SNR_MIN}..{SNR_MAX} in steps of {SNR_STEP}"
    for key in ("snr_min", "snr_max"):
        v = getattr(d, key)
        _range(
            SNR_MIN <= v <= SNR_MAX and (v - SNR_MIN) % SNR_STEP == 0,
            f"[data] {key} = {v} is off the SNR grid {grid}",
        )
    _range(
        d.snr_min <= d.snr_max, f"[data] snr_min {d.snr_min} > snr_max {d.snr_max}: empty SNR range"
    )
    try:
        resolve_classes(d.classes)
    except ValueError as e:
        raise ConfigError(f"[data] classes: {e}") from None
    _range(
        len(d.split) == 3 and all(0 <= x <= 1 for x in d.split) and abs(sum(d.split) - 1) < 1e-6,
        f"[data] split must be 3 shares (train, val, test) in 0..1 summing to 1, got {d.split}",
    )
    _range(d.split[0] > 0, "[data] split: the train share must be > 0")
    _range(d.frames_per_cell >= 0, "[data] frames_per_cell must be >= 0 (0 = all)")
    _range(d.path != "", "[data] path must name an HDF5 file")
    _range(8 <= im.size <= 1024, f"[image] size must be in 8..1024, got {im.size}")
    _range(1 <= im.channels <= 3, f"[image] channels must be in 1..3, got {im.channels}")
    _range(im.range > 0, f"[image] range must be > 0, got {im.range}")
    check_arch(m.arch)
    _range(0 <= m.dropout < 1, f"[model] dropout must be in [0, 1), got {m.dropout}")
    _range(
        1 <= t.epochs <= MAX_EPOCHS, f"[train] epochs must be in 1..{MAX_EPOCHS}, got {t.epochs}"
    )
    _range(
        1 <= t.batch_size <= MAX_BATCH,
        f"[train] batch_size must be in 1..{MAX_BATCH}, got {t.batch_size}",
    )
    _range(0 < t.lr <= 10, f"[train] lr must be in (0, 10], got {t.lr}")
    _range(
        0 <= t.weight_decay <= 10, f"[train] weight_decay must be in 0..10, got {t.weight_decay}"
    )
    _range(
        0 <= t.warmup_epochs < t.epochs or t.warmup_epochs == 0,
        f"[train] warmup_epochs must be in 0..epochs-1, got {t.warmup_epochs}",
    )
    _range(t.grad_clip >= 0, f"[train] grad_clip must be >= 0 (0 = off), got {t.grad_clip}")
    for key, top in (("early_stop_patience", MAX_EPOCHS), ("max_steps_per_epoch", 10**9),
                     ("threads", 1024)):  # fmt: skip
        v = getattr(t, key)
        _range(0 <= v <= top, f"[train] {key} must be in 0..{top} (0 = off), got {v}")
    split_name, _, metric = t.select_metric.partition(".")
    _range(
        split_name in ("val", "train") and metric in METRICS,
        f"[train] select_metric must be val.<metric> or train.<metric> with <metric> one of "
        f"{', '.join(METRICS)}, got {t.select_metric!r}",
    )
    _range(
        set(lo.weights) == {"mod", "snr"} and all(w >= 0 for w in lo.weights.values()),
        f"[loss] weights must be {{mod = x, snr = y}} with x, y >= 0, got {lo.weights}",
    )
    _range(lo.snr_distance_weight >= 0, "[loss] snr_distance_weight must be >= 0")
    _range(
        r.device in ("auto", "cpu", "cuda")
        or r.device.startswith("cuda:")
        and r.device[5:].isdigit(),
        f"[run] device must be auto, cpu, cuda or cuda:N, got {r.device!r}",
    )
    if isinstance(r.gpus, list):
        _range(all(g >= 0 for g in r.gpus), f"[run] gpus must be GPU indices >= 0, got {r.gpus}")
    _range(
        0 <= r.max_restarts <= 1000, f"[run] max_restarts must be in 0..1000, got {r.max_restarts}"
    )
    _range(
        1 <= r.step_log_every <= 1_000_000,
        f"[run] step_log_every must be in 1..1000000, got {r.step_log_every}",
    )
    _range(
        1 <= r.checkpoint_every <= MAX_EPOCHS,
        f"[run] checkpoint_every must be in 1..{MAX_EPOCHS} epochs, got {r.checkpoint_every}",
    )
    _range(
        0 <= r.checkpoint_minutes <= 1440,
        f"[run] checkpoint_minutes must be in 0..1440 (0 = per epoch only), got {r.checkpoint_minutes}",
    )
    _range(
        0 <= r.stop_grace_s <= 86400,
        f"[run] stop_grace_s must be in 0..86400 seconds, got {r.stop_grace_s}",
    )
    _validate_processes(r)
    _validate_health(cfg.health, r.stop_on)
    _validate_slurm(cfg.slurm)
    _range(
        cfg.mirror.wandb == "off" or cfg.mirror.wandb_project.strip() != "",
        "[mirror] wandb_project must name a W&B project",
    )


MAX_NPROC = 256


def _validate_processes(r: RunConfig) -> None:
    """`run.nproc` against the GPUs the run names: a list of several GPUs is one process per
    GPU, so a different nproc, or nproc > 1 pinned to one `cuda:N`, cannot both hold."""
    _range(1 <= r.nproc <= MAX_NPROC, f"[run] nproc must be in 1..{MAX_NPROC}, got {r.nproc}")
    if r.nproc > 1 and isinstance(r.gpus, list) and r.gpus:
        _range(
            len(r.gpus) == r.nproc,
            f"[run] nproc = {r.nproc} but gpus lists {len(r.gpus)} GPUs (one process per GPU); "
            "drop nproc or make them agree",
        )
    if r.nproc > 1:
        _range(
            not r.device.startswith("cuda:"),
            f"[run] nproc = {r.nproc} needs several GPUs, but device = {r.device!r} pins one; "
            'use device = "cuda" with gpus = [...] or gpus = "auto"',
        )
    if isinstance(r.gpus, list) and len(set(r.gpus)) != len(r.gpus):
        raise ConfigError(f"[run] gpus lists a GPU twice: {r.gpus}")


def _validate_health(h: HealthConfig, stop_on: list[str]) -> None:
    for rule in stop_on:
        near = nearest(rule, list(HEALTH_RULES))
        hint = f"; did you mean {near!r}?" if near else ""
        _range(
            rule in HEALTH_RULES,
            f"[run] stop_on: unknown health rule {rule!r}{hint} (rules: {', '.join(HEALTH_RULES)})",
        )
    for key, top in (("min_epochs", MAX_EPOCHS), ("patience", MAX_EPOCHS),
                     ("overfit_epochs", MAX_EPOCHS)):  # fmt: skip
        v = getattr(h, key)
        _range(0 <= v <= top, f"[health] {key} must be in 0..{top}, got {v}")
    _range(h.min_epochs >= 1, f"[health] min_epochs must be >= 1, got {h.min_epochs}")
    _range(0 < h.alpha < 0.5, f"[health] alpha must be in (0, 0.5), got {h.alpha}")
    _range(h.explode_factor > 1, f"[health] explode_factor must be > 1, got {h.explode_factor}")
    _range(
        0 <= h.data_bound_util <= 100,
        f"[health] data_bound_util must be in 0..100 percent, got {h.data_bound_util}",
    )
    _range(
        0 <= h.data_bound_minutes <= 1440,
        f"[health] data_bound_minutes must be in 0..1440 (0 = off), got {h.data_bound_minutes}",
    )


def _validate_slurm(s: SlurmConfig) -> None:
    for key, lo, hi in (("nodes", 1, 4096), ("gpus_per_node", 0, 64), ("cpus_per_task", 0, 4096),
                        ("mem_gb", 0, 65536), ("time_min", 1, 525_600)):  # fmt: skip
        v = getattr(s, key)
        _range(lo <= v <= hi, f"[slurm] {key} must be in {lo}..{hi}, got {v}")
    for key, value in s.additional.items():
        bad = key.replace("_", "-") in SLURM_RESERVED or value is False
        why = "is set by amc-tui itself" if value is not False else "= false: use true or drop it"
        _range(not bad, f"[slurm] additional.{key} {why}")


# --------------------------------------------------------------------------- load, dump, overrides


def parse_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """tomllib with the error turned into `file:line:col: message`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        e.doc = text  # type: ignore[attr-defined]
        line = getattr(e, "lineno", None)
        col = getattr(e, "colno", None)
        msg = getattr(e, "msg", str(e))
        if line is None:  # Python < 3.14 puts the position only in the text
            return _reraise_legacy(e, source)
        raise ConfigError(f"{source}:{line}:{col}: TOML syntax error: {msg}") from None


def _reraise_legacy(e: Exception, source: str) -> dict[str, Any]:
    text = str(e)
    m = re.search(r"\(at line (\d+), column (\d+)\)", text)
    if m is None and "(at end of document)" in text:
        msg = text.replace("(at end of document)", "").strip()
        raise ConfigError(
            f"{source}:{_end_pos(e)}: TOML syntax error: {msg} at end of document"
        ) from None
    if m:
        msg = text[: m.start()].strip()
        raise ConfigError(f"{source}:{m.group(1)}:{m.group(2)}: TOML syntax error: {msg}") from None
    raise ConfigError(f"{source}: TOML syntax error: {text}") from None


def _end_pos(e: Exception) -> str:
    doc = getattr(e, "doc", None) or ""
    lines = doc.split("\n")
    return f"{len(lines)}:{len(lines[-1]) + 1}"


def parse_override(item: str) -> tuple[list[str], Any]:
    """`table.key=value` with a TOML-typed value; bare words are taken as strings."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected table.key=value")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of `raw` with each `--set` applied (validation happens in from_dict)."""
    out = json.loads(json.dumps(raw))
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part} is not a table")
        node[path[-1]] = value
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a config file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config {p}: {e}") from None
    raw = parse_toml(text, str(p))
    return from_dict(apply_overrides(raw, overrides or []))


def loads_config(text: str, source: str = "<string>") -> Config:
    return from_dict(parse_toml(text, source))


def _strip_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_strip_none(v) for v in obj]
    return obj


def dumps_config(cfg: Config) -> str:
    """The resolved config as TOML (tomli-w): every key, tables in schema order."""
    import tomli_w  # off the trainer's import path: a GPU node's environment may lack it

    return tomli_w.dumps(_strip_none(cfg.to_dict()))


def with_data_path(cfg: Config, workspace: Path) -> Config:
    """A copy whose data path is absolute, resolved against the workspace."""
    out = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data))
    p = Path(cfg.data.path).expanduser()
    out.data.path = str(p if p.is_absolute() else (workspace / p).resolve())
    return out


def cell_counts(data: DataConfig) -> dict[str, int]:
    """How many classes and SNR levels a validated data selection covers (meta.json `cells`:
    runs are only comparable on the same grid)."""
    return {
        "classes": len(resolve_classes(data.classes)),
        "snrs": (data.snr_max - data.snr_min) // SNR_STEP + 1,
    }


def diff_configs(
    a: dict[str, Any], b: dict[str, Any], prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """(dotted key, a value, b value) for every leaf that differs."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        va, vb = a.get(key), b.get(key)
        dotted = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict) and key != "backbone_kwargs":
            out.extend(diff_configs(va, vb, dotted + "."))
        elif va != vb:
            out.append((dotted, va, vb))
    return out
