# Two commands on a fresh machine:
#   make demo   deploy the example customer `acme` to the local target (no cloud account, no token)
#   make test   run the whole suite (unit + integration with the real pulumi, tofu, ansible,
#               actionlint, moto's S3 server, PostgreSQL and a local GitHub API server)
# Both bootstrap what they need (virtualenv, packages, pinned binaries) and reuse caches:
# pip's cache, Go's module cache, and the engine's tool cache (~/.cache/managed-infra-engine/tools).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SUDO    = $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test unit integration tools tools-pulumi postgres browser venv clean-demo help

help:
	@echo "make demo   - deploy the example customer acme locally and print its outputs"
	@echo "make test   - run the whole test suite"
	@echo "make tools  - build/install the pinned pulumi, tofu, actionlint and opa, the local OpenTofu provider and the Terraform releases the tests use into the tool cache"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

tools-pulumi: venv
	$(BIN)/engine tools install --tool pulumi

# HashiCorp Terraform releases the integration tests run (tests/integration/test_terraform_versions.py),
# built from the Go module proxy into the tool cache once; other lines build when a customer first needs them.
TERRAFORM_TEST_LINES = 1.6 1.16

tools: venv
	$(BIN)/engine tools install
	$(BIN)/engine tools install $(foreach line,$(TERRAFORM_TEST_LINES),--terraform $(line))
	$(BIN)/engine policy install

# The run-history tests start a throwaway PostgreSQL server from Debian's binaries (as the postgres user).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

# The portal's browser test drives Debian's headless Chromium through chromium-driver (browser downloads fail here).
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null; }

demo: tools-pulumi
	$(BIN)/engine policy install  # every plan passes the provider's policies (policy/*.rego) before it is applied
	$(BIN)/engine up acme
	@echo
	@echo "Deployed. Try: $(BIN)/engine outputs acme   |   $(BIN)/engine up acme --json   |   $(BIN)/engine destroy acme --yes"
	@echo "The portal on this data: $(BIN)/engine serve --local-sign-in   then open http://127.0.0.1:8080/ (docs/PORTAL.md)"

unit: venv
	$(BIN)/python -m pytest tests/unit -q

integration: tools postgres browser
	$(BIN)/python -m pytest tests/integration -q

test: tools postgres browser
	$(BIN)/python -m pytest -q

clean-demo: venv
	$(BIN)/engine destroy acme --yes
