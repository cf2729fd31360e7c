# `make run` and `make test` build the environment they need in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR ?= outputs/make-run/$(shell date +%Y%m%d-%H%M%S)
RESULTS ?= results

.PHONY: run test bench lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,launchers]'
	touch $(STAMP)

## The default sweeps (variance: quadratic grid and logistic regression;
## convergence: both models, fewer seeds on logistic, whose Monte Carlo ELBO
## dominates the cost on a CPU), then the reducer.
run: $(STAMP)
	$(PY) -m harness +sweep=quadratic_grid hydra.sweep.dir=$(RUN_DIR)/quadratic
	$(PY) -m harness +sweep=real_data hydra.sweep.dir=$(RUN_DIR)/logistic
	$(PY) -m harness +sweep=convergence_default model.rotate=true \
		model.condition_number=10 hydra.sweep.dir=$(RUN_DIR)/convergence_quadratic
	$(PY) -m harness +sweep=convergence_default model=logistic model.num_data=100 \
		num_seeds=64 hydra.sweep.dir=$(RUN_DIR)/convergence_logistic
	$(PY) -m harness.reduce $(RUN_DIR) --out $(RESULTS)
	$(PY) experiments/level_and_gradient.py --out $(RESULTS)
	@echo "records: $(RUN_DIR)"
	@echo "tables:  $(RESULTS)/variance_table.md, $(RESULTS)/variance_table.csv"
	@echo "         $(RESULTS)/convergence_table.md, $(RESULTS)/convergence_table.csv"

## The test suite.
test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) outputs .pytest_cache
