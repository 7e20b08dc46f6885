# The two commands a newcomer needs: `make local` and `make test`. Both set up .venv on first use.
# Lambda runs the bridge on python3.13 (infra/resources.json): build and test with 3.13 where the
# machine has it (on PATH, or installed by pyenv), else with python3 (3.11 or newer; the zip then
# carries no bytecode and the tests that need 3.13's are skipped, each saying so).
PYTHON ?= $(or $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; \
	do "$$p" -c '' >/dev/null 2>&1 && { echo "$$p"; break; }; done),python3)
PYTHON := $(PYTHON)
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(PYTHON_VERSION)
CHECKOV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV)/.installed
STAGE ?= dev
REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)

.PHONY: setup local test quick lint format bench clean package deploy configure rehearse

# Reinstalls only when a requirements file changed since the last install.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fuse-bridge needs Python 3.11 or newer")'
	@# A .venv made by another Python is made again (its packages were built for that one).
	@test "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = \
		"$(PYTHON_VERSION)" || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

# checkov pins its own boto3, so it gets a venv of its own inside .venv.
$(CHECKOV_STAMP): requirements-checkov.txt | $(STAMP)
	@test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

setup: $(STAMP)

local: setup
	$(BIN)/python -m local.run

test: setup $(CHECKOV_STAMP) lint
	$(BIN)/python -m pytest

# A rehearsal deploy alone: the packaged template, expanded by AWS's SAM translator, deployed by
# the AWS CLI to a moto server, and each deployed handler run from its own environment.
rehearse: setup
	$(BIN)/python -m pytest -m rehearse

# The fast loop: lint, and every test not marked slow (no packaging, no local stack).
quick: setup lint
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/python -m bench.run

# The deployable template: chalice's own, merged with infra/resources.json, in build/$(STAGE)/.
package: setup
	rm -rf build/$(STAGE)
	AWS_DEFAULT_REGION=$(REGION) $(BIN)/chalice package --stage $(STAGE) \
		--merge-template infra/resources.json build/$(STAGE)
	$(BIN)/python -m infra.precompile build/$(STAGE)/deployment.zip
	@echo "packaged stage $(STAGE) in build/$(STAGE)/ (sam.json, deployment.zip)"

# Needs AWS credentials and an S3 bucket (DEPLOY_BUCKET) for the code and the template, which is
# over the 51,200 bytes CloudFormation takes inline. The AWS CLI is .venv's (requirements-dev).
AWS_CLI := $(BIN)/aws
deploy: package
	@test -n "$(DEPLOY_BUCKET)" || { echo "set DEPLOY_BUCKET to an S3 bucket for the code"; exit 1; }
	$(AWS_CLI) cloudformation package --region $(REGION) --template-file build/$(STAGE)/sam.json \
		--s3-bucket $(DEPLOY_BUCKET) --use-json --output-template-file build/$(STAGE)/packaged.json
	$(AWS_CLI) cloudformation deploy --region $(REGION) --template-file build/$(STAGE)/packaged.json \
		--s3-bucket $(DEPLOY_BUCKET) \
		--stack-name fuse-bridge-$(STAGE) --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
		--parameter-overrides Stage=$(STAGE) AlarmEmail=$(ALARM_EMAIL)
	$(AWS_CLI) cloudformation describe-stacks --region $(REGION) --stack-name fuse-bridge-$(STAGE) \
		--query "Stacks[0].Outputs" --output table

# Writes the stage's SSM parameters, asking for each value (secrets without echo).
configure: setup
	AWS_DEFAULT_REGION=$(REGION) $(BIN)/python -m infra.configure --stage $(STAGE)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
