# Infrastructure targets, included by the main Makefile (`-include infra/infra.mk`).
# The lint tools live in their own venv: checkov pins packages that conflict with Airflow's.
# Uses $(UV), $(ENVS) (and the env install rule) and $(PY) from the main Makefile.

INFRA_BIN      := $(ENVS)/infra/bin
INFRA_TEMPLATES = $(wildcard infra/cfn/*.yaml)
MWAA_OUT       ?= dist/mwaa
MWAA_UPLOAD    ?=
# Empty (default): the offline bundle for network.yaml's private subnets without NAT (wheels and
# constraints in plugins.zip, requirements.txt with --no-index). MWAA_ONLINE=1: requirements from PyPI.
MWAA_ONLINE    ?=
# checkov: no calls home (guideline download, version check); CloudFormation templates only.
CHECKOV_ARGS   ?= --directory infra --framework cloudformation --skip-download --compact --quiet

.PHONY: infra-venv
infra-venv: $(ENVS)/infra/.installed ## Install cfn-lint + checkov into .mlops/venvs/infra

.PHONY: lint-infra
lint-infra: infra-venv ## cfn-lint + checkov on infra/ (zero failed checks)
	$(INFRA_BIN)/cfn-lint --include-checks I -- $(INFRA_TEMPLATES)
	@echo "cfn-lint: clean ($(words $(INFRA_TEMPLATES)) templates)"
	BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false $(INFRA_BIN)/checkov $(CHECKOV_ARGS)

MWAA_BUNDLE    ?= $(STATE)/mwaa

.PHONY: mwaa-bundle
mwaa-bundle: venv $(ENVS)/sdk/.installed ## Build the MWAA bundle in .mlops/mwaa, offline unless MWAA_ONLINE=1 (MWAA_UPLOAD=s3://bucket/prefix also uploads)
	$(PY) -m mlops_tools.mwaa_bundle --out $(MWAA_BUNDLE) --uv $(UV) --sdk-python $(ENVS)/sdk/bin/python \
	  $(if $(MWAA_ONLINE),--online) $(if $(MWAA_UPLOAD),--upload $(MWAA_UPLOAD))

# The wheels of the SageMaker jobs' and the endpoint's dependencies (no NAT in network.yaml: nothing installs
# from PyPI at a container's start). SAGEMAKER_WHEELS_UPLOAD=s3://<artifacts>/sagemaker/wheelhouse also uploads
# (then set training.wheelhouse_uri to it); SAGEMAKER_TRAINING_PYTHON / SAGEMAKER_INFERENCE_PYTHON name the
# Python of an image the tool's IMAGES table does not list.
SAGEMAKER_WHEELS        ?= $(STATE)/sagemaker-wheels
SAGEMAKER_WHEELS_UPLOAD ?=
.PHONY: sagemaker-wheels
sagemaker-wheels: venv ## Fetch the SageMaker containers' wheels into .mlops/sagemaker-wheels (SAGEMAKER_WHEELS_UPLOAD=s3://... also uploads)
	$(PY) -m mlops_tools.sagemaker_wheels --out $(SAGEMAKER_WHEELS) --uv $(UV) \
	  $(if $(SAGEMAKER_TRAINING_PYTHON),--training-python $(SAGEMAKER_TRAINING_PYTHON)) \
	  $(if $(SAGEMAKER_INFERENCE_PYTHON),--inference-python $(SAGEMAKER_INFERENCE_PYTHON)) \
	  $(if $(SAGEMAKER_WHEELS_UPLOAD),--upload $(SAGEMAKER_WHEELS_UPLOAD))

.PHONY: lambdas
lambdas: venv ## Build the Lambda packages (run API, reporting) into .mlops/lambda for Python 3.12 on arm64
	$(PY) -m mlops_tools.lambda_zips --out $(STATE)/lambda --uv $(UV)

.PHONY: mwaa-check
mwaa-check: mwaa-bundle ## Build the bundle, resolve it for MWAA (Python 3.12; offline from plugins.zip's wheels), install it fresh, load its plugins, parse the DAGs on aws
	$(PY) -m mlops_tools.mwaa_check --bundle $(MWAA_BUNDLE) --work $(STATE)/mwaa-check --uv $(UV)
