# The README's commands. `make quickstart` and `make test` set everything up first.
PYTHON     ?= python3
VENV       ?= .venv
# torch is installed first, so no later requirement picks a build of its own choosing (README, Set-up):
#   make setup              TORCH_SPEC from your pip index (on Linux PyPI: the CUDA build, several GB)
#   make setup TORCH=cpu    the CPU build, from PyTorch's CPU wheel index
#   make setup TORCH=cuda   the CUDA build, from PyTorch's index for TORCH_CUDA (e.g. cu130, cu126)
TORCH_SPEC ?= torch==2.13.0
TORCH      ?=
TORCH_CUDA ?= cu130
TORCH_INDEX_cpu  := https://download.pytorch.org/whl/cpu
TORCH_INDEX_cuda := https://download.pytorch.org/whl/$(TORCH_CUDA)
TORCH_FROM := $(if $(TORCH),--index-url $(TORCH_INDEX_$(TORCH)),)
PY         := $(VENV)/bin/python
# Full official datasets for the data tests and benchmarks, when present.
DATA_DIR   ?= $(wildcard ../shared/data)

.PHONY: setup lock quickstart test test-fast bench bench-quick clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@case "$(TORCH)" in ""|cpu|cuda) ;; *) echo "error: TORCH=$(TORCH): allowed: cpu, cuda (or leave it unset)"; exit 2;; esac
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: any later requirement would otherwise pull a multi-GB CUDA build
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(TORCH_FROM)
	# the tested versions of everything else (constraints.txt); `pip install -e .` alone keeps pyproject's ranges
	$(PY) -m pip install -q -e ".[dev,demo]" -c constraints.txt
	touch $@

# constraints.txt from this environment (after a deliberate upgrade; then run make test and update the README's figures)
lock: setup
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -viE '^(torch|triton|nvidia-|pip|setuptools|wheel|finetune.compare)[=-]'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

quickstart: setup
	$(PY) main.py --mode compare --config configs/quickstart.yaml

test: setup
	FINETUNE_COMPARE_DATA_DIR=$(DATA_DIR) $(PY) -m pytest

# the developer's lane (~30 s on 2 cores): nothing that trains, simulates, builds a RoBERTa-base or starts a server
test-fast: setup
	$(PY) -m pytest -m "not slow" -q

bench: setup
	FINETUNE_COMPARE_DATA_DIR=$(DATA_DIR) $(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_merged_eval.py
	$(PY) benchmarks/bench_ray.py
	$(PY) benchmarks/bench_plan.py
	$(PY) benchmarks/bench_drift.py
	$(PY) benchmarks/bench_serving.py
	FINETUNE_COMPARE_DATA_DIR=$(DATA_DIR) $(PY) benchmarks/bucket_padding.py

bench-quick: setup
	FINETUNE_COMPARE_DATA_DIR=$(DATA_DIR) $(PY) benchmarks/bench_training.py --quick

clean:
	rm -rf outputs .pytest_cache
