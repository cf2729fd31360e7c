# `make run` and `make test` build the environment they need in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= outputs/make-run/$(shell date +%Y%m%d-%H%M%S)
RESULTS ?= results

.PHONY: run test bench bench-quick install-cuda lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,launchers]'
	touch $(STAMP)

## The default sweep (quadratic grid and logistic regression), then the reducer.
run: $(STAMP)
	$(PY) -m harness +sweep=quadratic_grid hydra.sweep.dir=$(RUN_DIR)/quadratic
	$(PY) -m harness +sweep=real_data hydra.sweep.dir=$(RUN_DIR)/logistic
	$(PY) -m harness.reduce $(RUN_DIR) --out $(RESULTS)
	@echo "records: $(RUN_DIR)"
	@echo "tables:  $(RESULTS)/variance_table.md, $(RESULTS)/variance_table.csv"

## The test suite.
test: $(STAMP)
	$(PY) -m pytest -q

## The benchmark suite (not part of `make test`): results/bench.csv and .md.
bench: $(STAMP)
	$(PY) -m harness.bench --out $(RESULTS)

## The same with fewer seeds and steps, for a check that it runs.
bench-quick: $(STAMP)
	$(PY) -m harness.bench --quick --out $(RESULTS)/quick

## CUDA 12 jaxlib in the same environment (needs an NVIDIA driver; see
## docs/performance.md).
install-cuda: $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,launchers,cuda]'

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) outputs .pytest_cache
