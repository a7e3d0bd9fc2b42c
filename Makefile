# sparse_rl — the two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it: `make demo` only what the
# demo needs, `make install` / `make test` everything (the dev tools, Ray for the benchmark tests,
# video and W&B for their tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch. Where pip's default torch is a CUDA build (Linux x86_64), the CPU one
# comes from PyTorch's index: make TORCH_INDEX=https://download.pytorch.org/whl/cpu (see README).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
EXTRAS ?= dev,ray,video,track
BASE_STAMP := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench-topology clean

$(BASE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e .
	touch $(BASE_STAMP)

$(STAMP): $(BASE_STAMP)
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(BASE_STAMP)
	$(PY) -m sparse_rl.cli demo

lint: $(STAMP)
	$(PY) -m ruff check sparse_rl tests scripts

test: lint
	$(PY) -m pytest -q

bench-topology: $(STAMP)
	$(PY) scripts/bench_topology.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
