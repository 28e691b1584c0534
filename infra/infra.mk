# Infrastructure targets, included by the main Makefile (`-include infra/infra.mk`).
# The lint tools live in their own venv: checkov pins packages that conflict with Airflow's.
# Uses $(UV) (and its install rule) and $(PY) from the main Makefile.

INFRA_VENV     ?= $(abspath .mlops/venv-infra)
INFRA_BIN      := $(INFRA_VENV)/bin
INFRA_TEMPLATES = $(wildcard infra/cfn/*.yaml)
MWAA_OUT       ?= dist/mwaa
MWAA_UPLOAD    ?=
# checkov: no calls home (guideline download, version check); CloudFormation templates only.
CHECKOV_ARGS   ?= --directory infra --framework cloudformation --skip-download --compact --quiet

$(INFRA_VENV)/.installed: requirements-infra.lock | $(UV)
	@echo "==> installing cfn-lint and checkov from requirements-infra.lock into $(INFRA_VENV)"
	$(UV) venv --quiet --allow-existing -p 3.11 $(INFRA_VENV)
	$(UV) pip sync --quiet -p $(INFRA_BIN)/python requirements-infra.lock
	touch $@

.PHONY: infra-venv
infra-venv: $(INFRA_VENV)/.installed ## Install cfn-lint + checkov into .mlops/venv-infra

.PHONY: lock-infra
lock-infra: | $(UV) ## Re-resolve requirements-infra.txt into requirements-infra.lock
	$(UV) pip compile requirements-infra.txt -p 3.11 -o requirements-infra.lock

.PHONY: lint-infra
lint-infra: infra-venv ## cfn-lint + checkov on infra/ (zero failed checks)
	$(INFRA_BIN)/cfn-lint --include-checks I -- $(INFRA_TEMPLATES)
	@echo "cfn-lint: clean ($(words $(INFRA_TEMPLATES)) templates)"
	BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false $(INFRA_BIN)/checkov $(CHECKOV_ARGS)

.PHONY: mwaa-package
mwaa-package: venv ## Package dags/, plugins.zip, requirements.txt, startup.sh into $(MWAA_OUT) (MWAA_UPLOAD=s3://bucket/mwaa uploads)
	$(PY) -m mlops.deploy.mwaa_package --out $(MWAA_OUT) $(if $(MWAA_UPLOAD),--upload $(MWAA_UPLOAD))

.PHONY: mwaa-package-dry-run
mwaa-package-dry-run: venv ## Print the MWAA package's files, sizes and S3 keys; write nothing
	$(PY) -m mlops.deploy.mwaa_package --out $(MWAA_OUT) --dry-run $(if $(MWAA_UPLOAD),--upload $(MWAA_UPLOAD))
