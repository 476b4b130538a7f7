# The README's commands. `make quickstart` and `make test` set everything up first.
PYTHON     ?= python3
VENV       ?= .venv
# CPU build by default (on these machines pip takes it from local disk). GPU users:
#   make setup TORCH_SPEC=torch==2.13.0   (from an index with CUDA wheels), or install torch yourself first
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
	$(PY) -m pip install -q -e ".[dev]"
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
