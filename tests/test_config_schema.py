"""The config schema: defaults, types, ranges, overrides, dump/load round trip, hash."""

from __future__ import annotations

import tomllib

import pytest

from amc_tui.config import (
    ARCH_ALIASES,
    Config,
    ConfigError,
    apply_overrides,
    diff_configs,
    dumps_config,
    from_dict,
    loads_config,
    resolve_arch,
)


def test_defaults_follow_design() -> None:
    cfg = loads_config("")
    assert cfg.model.arch == "swin_tiny" and cfg.model.dropout == 0.3
    assert cfg.train.batch_size == 32 and cfg.train.lr == 1e-4 and cfg.train.epochs == 100
    assert cfg.data.split == [0.8, 0.1, 0.1] and cfg.data.snr_min == -20
    assert cfg.loss.weighting == "uncertainty" and cfg.loss.weights == {"mod": 1.0, "snr": 1.0}
    assert cfg.train.select_metric == "val.acc_combined"
    assert cfg.run.restart == "never" and cfg.run.max_restarts == 2
    assert cfg.train.compile is False and cfg.train.compile_mode == "default"
    assert cfg.train.drop_last is True


def test_int_is_widened_to_float_and_kept_typed() -> None:
    cfg = loads_config("[train]\nlr = 1\ngrad_clip = 2\n")
    assert isinstance(cfg.train.lr, float) and cfg.train.lr == 1.0
    assert isinstance(cfg.train.grad_clip, float)


def test_dump_then_load_round_trips_every_key() -> None:
    cfg = loads_config(
        'name = "x-y-1"\ntags = ["a"]\n[model]\nbackbone_kwargs = {window_size = 4}\n'
    )
    again = loads_config(dumps_config(cfg))
    assert again == cfg
    assert again.hash() == cfg.hash()
    # every table and key is written out (the resolved config is complete)
    raw = tomllib.loads(dumps_config(cfg))
    assert set(raw["train"]) == set(Config().train.__dataclass_fields__)


def test_hash_is_stable_and_sensitive() -> None:
    a, b = loads_config(""), loads_config("")
    assert a.hash() == b.hash() and len(a.hash()) == 16
    assert loads_config("[train]\nlr = 0.001\n").hash() != a.hash()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[train]\nlr_rate = 1e-3\n", "unknown key 'lr_rate' in [train]; did you mean 'lr'?"),
        ("[trian]\nlr = 1\n", "unknown key 'trian' at top level; did you mean 'train'?"),
        ("[model]\ndropuot = 0.1\n", "did you mean 'dropout'?"),
        ('[train]\nepochs = "ten"\n', '[train] epochs must be an integer, got "ten"'),
        ("[train]\nepochs = 1.5\n", "[train] epochs must be an integer"),
        ("[data]\nshuffle = 1\n", "[data] shuffle must be true/false"),
        ('[image]\nnormalize = "minmax"\n', '"log1p" or "density" or "max"'),
        ("[train]\nlr = 0\n", "[train] lr must be in (0, 10]"),
        ("[train]\nepochs = 0\n", "[train] epochs must be in 1..100000"),
        ("[train]\nepochs = 1000000\n", "[train] epochs must be in 1..100000, got 1000000"),
        ("[train]\nbatch_size = 10000000\n", "[train] batch_size must be in 1..65536"),
        ("[train]\nlr = 30.0\n", "[train] lr must be in (0, 10], got 30.0"),
        ("[run]\nstop_grace_s = 1e9\n", "[run] stop_grace_s must be in 0..86400"),
        ("[run]\ncheckpoint_minutes = -1\n", "[run] checkpoint_minutes must be in 0..1440"),
        ("[train]\nthreads = 5000\n", "[train] threads must be in 0..1024"),
        ("[image]\nsize = 4\n", "[image] size must be in 8..1024"),
        ("[image]\nchannels = 4\n", "[image] channels must be in 1..3"),
        ("[data]\nsplit = [0.8, 0.1, 0.2]\n", "summing to 1"),
        ("[data]\nsnr_min = -21\n", "snr_min = -21 is off the SNR grid -20..30"),
        ("[data]\nsnr_max = 31\n", "snr_max = 31 is off the SNR grid"),
        ("[data]\nsnr_min = 10\nsnr_max = 0\n", "empty SNR range"),
        ('[data]\nclasses = ["QPSK", "9QAM"]\n', "unknown class name(s) '9QAM'; valid:"),
        (
            '[model]\narch = "swin_tinny"\n',
            "unknown arch 'swin_tinny' in [model]; close names: swin_tiny",
        ),
        ('[model]\narch = "nonsense"\n', "unknown arch 'nonsense'"),
        ('[run]\ndevice = "gpu"\n', "[run] device must be auto, cpu, cuda or cuda:N"),
        ('[train]\nselect_metric = "val.f1"\n', "select_metric must be"),
        ('name = "../evil"\n', "name: run name '../evil' contains a path separator"),
        ("[loss]\nweights = {mod = 1}\n", "[loss] weights must be"),
        ('[train]\ncompile_mode = "fast"\n', '"default" or "max-autotune" or "reduce-overhead"'),
        ('[train]\ndrop_last = "yes"\n', "[train] drop_last must be true/false"),
    ],
)
def test_bad_values_give_one_line_naming_the_problem(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads_config(text, "cfg.toml")
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg


def test_toml_syntax_error_names_file_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        loads_config('name = "a"\n[train]\nlr = = 1\n', "configs/x.toml")
    assert str(info.value).startswith("configs/x.toml:3:")
    assert "TOML syntax error" in str(info.value)


def test_timm_names_pass_through_without_importing_timm() -> None:
    cfg = loads_config('[model]\narch = "convnext_tiny"\n')
    assert resolve_arch(cfg.model.arch) == "convnext_tiny"
    assert resolve_arch("swin_tiny") == ARCH_ALIASES["swin_tiny"] == "swin_tiny_patch4_window7_224"


def test_overrides_are_toml_typed() -> None:
    raw = apply_overrides(
        {"train": {"lr": 1e-4}},
        ["train.lr=3e-4", "train.epochs=5", 'data.classes=["BPSK","QPSK"]', "notes=hello world"],
    )
    cfg = from_dict(raw)
    assert cfg.train.lr == 3e-4 and cfg.train.epochs == 5
    assert cfg.data.classes == ["BPSK", "QPSK"]
    assert cfg.notes == "hello world"
    with pytest.raises(ConfigError, match="expected table.key=value"):
        apply_overrides({}, ["train.lr"])


def test_diff_lists_only_keys_that_differ() -> None:
    a = loads_config("").to_dict()
    b = loads_config('[train]\nlr = 0.001\n[model]\narch = "resnet18"\n').to_dict()
    assert [k for k, _, _ in diff_configs(a, b)] == ["model.arch", "train.lr"]
