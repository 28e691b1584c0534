# One-command entry points. Nothing needs installing by hand: uv is fetched into
# .mlops/tools if it is missing, the pinned lock is installed into .venv, and the test
# target installs the PostgreSQL server and docker-compose it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

ROOT        := $(abspath .)
STATE       := $(ROOT)/.mlops
VENV        := $(ROOT)/.venv
PY          := $(VENV)/bin/python
SIZE        ?= 20000
PYTEST_ARGS ?=
UV          := $(or $(shell command -v uv 2>/dev/null),$(STATE)/tools/bin/uv)

export MLOPS_HOME            ?= $(STATE)
export MLOPS_TARGET          ?= local
export PYTHONPATH            := $(ROOT)/include:$(ROOT)/plugins
export AIRFLOW_HOME          ?= $(STATE)/airflow
export AIRFLOW__CORE__DAGS_FOLDER    := $(ROOT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES  := False
export AIRFLOW__API__HOST            := 127.0.0.1
export AIRFLOW__API__PORT            := 8080
export SPARK_LOCAL_IP                := 127.0.0.1
export NO_PROXY                      := *

-include infra/infra.mk

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-22s %s\n", $$1, $$2}'

$(STATE)/tools/bin/uv:
	@echo "==> uv not found; installing it into $(STATE)/tools"
	python3 -m venv $(STATE)/tools
	$(STATE)/tools/bin/pip install --quiet --disable-pip-version-check uv

.PHONY: uv
uv: $(UV)

$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	@echo "==> installing the pinned stack from requirements.lock into .venv"
	$(UV) venv --quiet --allow-existing -p 3.11 $(VENV)
	$(UV) pip sync --quiet -p $(PY) requirements.lock
	$(UV) pip install --quiet -p $(PY) --no-deps -e .   # the `mlops` command
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Install the pinned Python stack into .venv

.PHONY: lock
lock: | $(UV) ## Re-resolve requirements.txt into requirements.lock
	$(UV) pip compile --quiet -p 3.11 requirements.txt -o requirements.lock

.PHONY: demo
demo: venv ## Run the pipeline end to end on the local target (SIZE=orders)
	MLOPS_TARGET=local $(PY) -m mlops_airflow.demo --size $(SIZE)

.PHONY: test-deps
test-deps: venv
	@bash scripts/ensure_postgres.sh
	@bash scripts/ensure_docker_compose.sh
	@if grep -q '^infra-venv:' infra/infra.mk 2>/dev/null; then $(MAKE) --no-print-directory infra-venv; fi

.PHONY: test
test: test-deps ## Install everything, lint, and run the tests
	$(VENV)/bin/ruff check dags plugins include tests bench
	AIRFLOW_HOME=$(STATE)/airflow-test $(PY) -m pytest $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff, including the AIR3 Airflow 3 rules
	$(VENV)/bin/ruff check dags plugins include tests bench

.PHONY: airflow
airflow: venv ## Start Airflow standalone on http://127.0.0.1:8080 (stop with make stop)
	$(PY) -m mlops_airflow.local_airflow start

.PHONY: stop
stop: ## Stop Airflow and every local process the project started
	@if [ -x $(PY) ]; then $(PY) -m mlops_airflow.local_airflow stop; else echo "nothing to stop"; fi

.PHONY: clean
clean: stop ## Remove all local state in .mlops (keeps the installed tools and venvs)
	find $(STATE) -mindepth 1 -maxdepth 1 ! -name tools ! -name venv-infra -exec rm -rf {} +
