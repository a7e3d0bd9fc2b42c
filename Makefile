# sparse_rl — the two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it (with the dev tools and Ray,
# which the benchmark tests use).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch (a file on disk on our machines). GPU users: see README.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench-topology clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,ray]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m sparse_rl.cli demo

lint: $(STAMP)
	$(PY) -m ruff check sparse_rl tests scripts

test: lint
	$(PY) -m pytest -q

bench-topology: $(STAMP)
	$(PY) scripts/bench_topology.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
