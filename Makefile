# Set-up and everyday commands. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
EVIDENTLY_PORT ?= 8000
AIRFLOW_PORT ?= 8081
PYTEST_ARGS ?=

.PHONY: install run test test-all lint lock clean evidently-ui airflow

install: $(VENV)/.installed  ## create .venv and install the locked dependencies and shoprec

$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -r requirements.lock  # .pyc now: every step's process imports faster (also where PYTHONDONTWRITEBYTECODE is set)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	@touch $@

run: install  ## run the whole DVC pipeline on the embedded synthetic data
	dvc repro
	@echo
	@shoprec summary

test: install  ## the test suite (unit, data, e2e; not the slow ones) on every core (pytest-xdist)
	pytest -n auto --dist loadgroup -m "not slow" $(PYTEST_ARGS)

test-all: install  ## every test, slow ones included
	pytest -n auto --dist loadgroup $(PYTEST_ARGS)

evidently-ui: install  ## the Evidently UI over the runs in reports/workspace (http://127.0.0.1:$(EVIDENTLY_PORT))
	evidently ui --workspace reports/workspace --host 127.0.0.1 --port $(EVIDENTLY_PORT)

airflow: install  ## Airflow standalone with the shoprec DAGs (http://127.0.0.1:$(AIRFLOW_PORT)); SHOPREC_AIRFLOW_PASSWORD sets the login
	shoprec airflow --port $(AIRFLOW_PORT)

lint: install
	ruff check pipelines tests bench dags feature_repo

lock:  ## re-resolve requirements.lock from pyproject.toml
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:  ## remove pipeline outputs (not the venv)
	rm -rf data metrics plots models reports runs published
