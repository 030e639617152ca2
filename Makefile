# Two commands on a fresh machine: `make demo` and `make test`. Everything installs from here.
VENV    ?= .venv
PY      := $(VENV)/bin/python
AMC     := $(VENV)/bin/amc-tui
STAMP   := $(VENV)/.installed
DEMO_H5 := data/demo.h5
# Synthetic demo file: 17 digital classes x 26 SNRs; frames per cell sized for a CPU demo.
DEMO_FRAMES_PER_CELL ?= 64

.PHONY: venv test lint format demo demo-data demo-sweep bench docs clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,explain,tensorboard,wandb]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check amc_tui tests benchmarks docs
	$(VENV)/bin/ruff format --check amc_tui tests benchmarks docs
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format amc_tui tests benchmarks docs
	$(VENV)/bin/ruff check --fix amc_tui tests benchmarks docs

$(DEMO_H5): | $(STAMP)
	$(AMC) data synth $(DEMO_H5) --frames-per-cell $(DEMO_FRAMES_PER_CELL) --seed 0

demo-data: $(DEMO_H5)

# `amc-tui run` ends by printing the run directory and RUNLOG.md.
demo: $(STAMP) $(DEMO_H5)
	$(AMC) run configs/demo.toml

# Four demo runs (uncertainty weighting vs DWA, two seeds each) as one group, followed to the
# end: the points table and the effect; the group's entry lands in RUNLOG.md.
demo-sweep: $(STAMP) $(DEMO_H5)
	$(AMC) sweep configs/sweeps/demo.toml

bench: $(STAMP)
	$(PY) benchmarks/run.py --out benchmarks/results.json

# docs/CONFIG.md from the config schema, docs/TUI.md's key table from amc_tui/tui/keys.py
# (tests/test_config_reference.py and tests/test_tui_keys.py fail when one is stale).
docs: $(STAMP)
	$(PY) docs/make_config_reference.py
	$(PY) docs/make_keys_reference.py

clean-venv:
	rm -rf $(VENV)
