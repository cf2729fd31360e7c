# `make run` and `make test` build the environment they need in .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_STAMP := $(shell date +%Y%m%d-%H%M%S)
RUN_DIR ?= outputs/make-run/$(RUN_STAMP)
RESULTS ?= results

.PHONY: run study sweeps study-sweeps test bench bench-quick install-cuda lint format clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,launchers]'
	touch $(STAMP)

## The default sweeps, then the reducer and the level-and-gradient figure:
## variance on the quadratic grid and logistic regression; convergence on both
## models (fewer seeds on logistic, whose Monte Carlo ELBO dominates the cost on
## a CPU); theory against practice on eight schools and the mixed model.
run: sweeps
	$(PY) -m harness.reduce $(RUN_DIR) --out $(RESULTS)
	$(PY) experiments/level_and_gradient.py --out $(RESULTS)
	@echo "records: $(RUN_DIR)"
	@echo "tables:  $(RESULTS)/variance_table.md, $(RESULTS)/variance_table.csv"
	@echo "         $(RESULTS)/convergence_table.md, $(RESULTS)/convergence_table.csv"
	@echo "theory:  $(RESULTS)/theory_vs_practice.md, $(RESULTS)/figures/theory_vs_practice.png"

## Everything in `make run`, plus the theory check on logistic regression and
## the network and the data-size sweep (about ten minutes more on two cores).
study: sweeps study-sweeps
	$(PY) -m harness.reduce $(RUN_DIR) --out $(RESULTS)
	$(PY) experiments/level_and_gradient.py --out $(RESULTS)
	@echo "records: $(RUN_DIR); tables and figures: $(RESULTS)/"

sweeps: $(STAMP)
	$(PY) -m harness +sweep=quadratic_grid hydra.sweep.dir=$(RUN_DIR)/quadratic
	$(PY) -m harness +sweep=real_data hydra.sweep.dir=$(RUN_DIR)/logistic
	$(PY) -m harness +sweep=convergence_default model.rotate=true \
		model.condition_number=10 hydra.sweep.dir=$(RUN_DIR)/convergence_quadratic
	$(PY) -m harness +sweep=convergence_default model=logistic model.num_data=100 \
		num_seeds=64 hydra.sweep.dir=$(RUN_DIR)/convergence_logistic
	$(PY) -m harness +sweep=convergence_default estimators=[rp] num_samples=1 \
		model.rotate=true model.condition_number=10 \
		hydra.sweep.dir=$(RUN_DIR)/convergence_quadratic_rp1
	$(PY) -m harness +sweep=convergence_default estimators=[rp] num_samples=1 \
		model=logistic model.num_data=100 num_seeds=64 \
		hydra.sweep.dir=$(RUN_DIR)/convergence_logistic_rp1
	$(PY) -m harness +sweep=theory_check model=eight_schools,glmm \
		hydra.sweep.dir=$(RUN_DIR)/theory_check

study-sweeps: $(STAMP)
	$(PY) -m harness +sweep=theory_check model=logistic,bnn \
		hydra.sweep.dir=$(RUN_DIR)/theory_check_more
	$(PY) -m harness +sweep=theory_check model=eight_schools \
		model.parameterization=centered hydra.sweep.dir=$(RUN_DIR)/theory_check_centered
	$(PY) -m harness +sweep=data_size hydra.sweep.dir=$(RUN_DIR)/data_size

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
