# The README's commands. `make quickstart` and `make test` set everything up first.
PYTHON     ?= python3
VENV       ?= .venv
# torch is installed first, so no later requirement picks a build of its own choosing. Elsewhere, install the
# CPU or CUDA build you want first (README, Set-up): the pin is then already satisfied.
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
# Full official datasets for the data tests and benchmarks, when present.
DATA_DIR   ?= $(wildcard ../shared/data)

.PHONY: setup quickstart test bench bench-quick clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: any later requirement would otherwise pull a multi-GB CUDA build
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,demo]"
	touch $@

quickstart: setup
	$(PY) main.py --mode compare --config configs/quickstart.yaml

test: setup
	FINETUNE_COMPARE_DATA_DIR=$(DATA_DIR) $(PY) -m pytest

bench: setup
	FINETUNE_COMPARE_DATA_DIR=$(DATA_DIR) $(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_merged_eval.py

bench-quick: setup
	FINETUNE_COMPARE_DATA_DIR=$(DATA_DIR) $(PY) benchmarks/bench_training.py --quick

clean:
	rm -rf outputs .pytest_cache
