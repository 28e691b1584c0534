# One-command entry points. Nothing needs installing by hand: uv is fetched into
# .mlops/tools if it is missing, each environment's lock is installed into its own venv, and
# the test target installs the PostgreSQL server and docker-compose it needs.
#
# Environments (envs/README.md): .venv is the Airflow environment (MWAA's pins); the job
# runtimes live in .mlops/venvs/<name> (glue, sagemaker) and so do the tool environments
# (infra: cfn-lint + checkov, sdk: sagemaker-core).
SHELL := /bin/bash
.DEFAULT_GOAL := help

include infra/mwaa/versions.env

ROOT        := $(abspath .)
STATE       := $(ROOT)/.mlops
VENV        := $(ROOT)/.venv
PY          := $(VENV)/bin/python
ENVS        := $(STATE)/venvs
RUNTIMES    := glue sagemaker
SIZE        ?= 20000
SEED        ?=
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
UV          := $(or $(shell command -v uv 2>/dev/null),$(STATE)/tools/bin/uv)
CONSTRAINTS_311 := $(STATE)/constraints/mwaa-$(MWAA_AIRFLOW_VERSION)-python3.11.txt

export MLOPS_HOME            ?= $(STATE)
export MLOPS_TARGET          ?= local
export MLOPS_RUNTIMES        := $(ENVS)
export PYTHONPATH            := $(ROOT)/include:$(ROOT)/plugins:$(ROOT)/tools
# Airflow's runs, asset events and XComs live with the state they name (a demo in another MLOPS_HOME gets its own)
export AIRFLOW_HOME          ?= $(MLOPS_HOME)/airflow
export AIRFLOW__CORE__DAGS_FOLDER    := $(ROOT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES  := False
export AIRFLOW__API__HOST            := 127.0.0.1
export AIRFLOW__API__PORT            ?= 8080
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

$(CONSTRAINTS_311): infra/mwaa/versions.env infra/mwaa/python311-overrides.txt infra/mwaa/SHA256SUMS
	python3 tools/mlops_tools/mwaa_constraints.py --python 3.11 --out $@

# --compile-bytecode: every process (scheduler, task, job, test) then imports from .pyc files, where
# PYTHONDONTWRITEBYTECODE (set on CI's machines) would recompile them on each import: `import
# airflow.sdk` 2.8 s -> 1.1 s of CPU, pandas + pyarrow 1.2 s -> 0.4 s, for ~20 s once per install.
$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	@echo "==> installing the Airflow environment (MWAA $(MWAA_AIRFLOW_VERSION) pins) from requirements.lock into .venv"
	$(UV) venv --quiet --allow-existing -p 3.11 $(VENV)
	$(UV) pip sync --quiet --compile-bytecode -p $(PY) requirements.lock
	$(UV) pip install --quiet -p $(PY) --no-deps -e .   # the `mlops` command and the Airflow plugin entry point
	touch $@

$(ENVS)/%/.installed: envs/%/requirements.lock | $(UV)
	@echo "==> installing the $* environment from envs/$*/requirements.lock into $(ENVS)/$*"
	$(UV) venv --quiet --allow-existing -p 3.11 $(ENVS)/$*
	$(UV) pip sync --quiet --compile-bytecode -p $(ENVS)/$*/bin/python envs/$*/requirements.lock
	touch $@

.PHONY: venv
venv: $(VENV)/.installed $(foreach r,$(RUNTIMES),$(ENVS)/$(r)/.installed) ## Install the Airflow environment and the job runtimes

.PHONY: lock
lock: $(CONSTRAINTS_311) | $(UV) ## Re-resolve every environment's requirements into its lock (the Airflow one under MWAA's constraints)
	$(UV) pip compile --quiet -p 3.11 --custom-compile-command "make lock" -c $(CONSTRAINTS_311) requirements.txt requirements-dev.txt -o requirements.lock
	for env in $(RUNTIMES) sdk infra; do \
	  $(UV) pip compile --quiet -p 3.11 --custom-compile-command "make lock" envs/$$env/requirements.txt -o envs/$$env/requirements.lock || exit 1; done

.PHONY: images
images: $(ENVS)/sdk/.installed ## Resolve the framework image URIs with sagemaker-core (envs/sdk) into include/mlops/aws/framework_images.json
	$(ENVS)/sdk/bin/python -m mlops_tools.framework_images --write

.PHONY: demo
demo: venv ## Run the pipeline end to end on the local target (SIZE=orders, SEED=generator seed)
	MLOPS_TARGET=local $(PY) -m mlops_tools.demo --size $(SIZE) $(if $(SEED),--seed $(SEED))

.PHONY: test-deps
test-deps: venv $(ENVS)/sdk/.installed
	@bash scripts/ensure_postgres.sh
	@bash scripts/ensure_docker_compose.sh
	@bash scripts/ensure_chromium.sh
	@if grep -q '^infra-venv:' infra/infra.mk 2>/dev/null; then $(MAKE) --no-print-directory infra-venv; fi

.PHONY: test
test: test-deps lint ## Install everything, lint, and run the tests
	@# The Airflow environment's suite on both cores (pytest-xdist, one file per worker at a time). Beside it,
	@# one background chain: the job runtimes' suites, then mwaa-check (whose MWAA environment runs the aws
	@# wiring tests and the IAM coverage test that reads their calls); the suite's end-to-end tests mostly
	@# wait on a scheduler, so the chain costs the suite little. Its log is printed when both are done.
	@mkdir -p $(STATE); side=$(STATE)/test-side.log; \
	echo "==> in the background: tests/jobs/{$(RUNTIMES)} in their runtimes, then mwaa-check (log: $$side)"; \
	( for runtime in $(RUNTIMES); do echo "==> tests/jobs/$$runtime in the $$runtime runtime"; \
	    $(ENVS)/$$runtime/bin/python -m pytest -p no:cacheprovider --confcutdir=tests/jobs tests/jobs/$$runtime \
	    || exit 1; done; $(MAKE) --no-print-directory mwaa-check ) > $$side 2>&1 & chain=$$!; \
	AIRFLOW_HOME=$(STATE)/airflow-test $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25 \
	  --ignore=tests/aws/test_wiring_moto.py --ignore=tests/aws/test_wiring_moto_iam.py $(PYTEST_ARGS); suite=$$?; \
	wait $$chain; side_rc=$$?; echo "==> the background chain (exit $$side_rc):"; cat $$side; \
	echo "==> Airflow environment suite: exit $$suite; job runtimes + mwaa-check: exit $$side_rc"; \
	test $$suite -eq 0 && test $$side_rc -eq 0

.PHONY: lint
lint: venv ## ruff (including the AIR3 Airflow 3 rules), ruff's formatter, and bandit (every finding fixed or marked with its reason)
	$(VENV)/bin/ruff check dags plugins include tools tests bench
	@# `ruff format dags plugins include tools tests bench` applies what this check asks for
	$(VENV)/bin/ruff format --check dags plugins include tools tests bench
	@# bandit warns for each string on a line it skipped; only its findings matter
	$(VENV)/bin/bandit -ll -q -r dags plugins include 2> >(grep -v "nosec encountered" >&2)

.PHONY: airflow
airflow: venv ## Start Airflow on http://127.0.0.1:8080 (or AIRFLOW__API__PORT), wait for every component, unpause the DAGs (stop with make stop)
	$(PY) -m mlops_tools.local_airflow start

.PHONY: airflow-status
airflow-status: venv ## Health of the local Airflow's components; fails naming the ones that are down
	$(PY) -m mlops_tools.local_airflow status

.PHONY: stop
stop: ## Stop Airflow and every local process the project started
	@if [ -x $(PY) ]; then $(PY) -m mlops_tools.local_airflow stop; else echo "nothing to stop"; fi

.PHONY: clean
clean: stop ## Remove all local state in .mlops (keeps the installed tools and venvs)
	find $(STATE) -mindepth 1 -maxdepth 1 ! -name tools ! -name venvs -exec rm -rf {} +
