# Every target bootstraps what it needs, so each works on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The editable install compiles the native PII scanner once; a changed C source recompiles it.
NATIVE_SOURCES := $(wildcard router/policy/piiscan/*.[ch])
NATIVE_STAMP := $(VENV)/.native-built
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1

.PHONY: bench-tools chart-crds help lock venv test test-unit test-component test-e2e test-engines lint format demo bench bench-full clean

help:
	@echo "make demo          run the whole routing path on this machine"
	@echo "make test          run the test suite (unit + component; e2e skipped without a cluster)"
	@echo "make lint          ruff + mypy --strict"
	@echo "make bench         quick benchmarks (<= 5 min); make bench-full for the complete run"
	@echo "make test-e2e      e2e tests against the cluster KUBECONFIG points at"
	@echo "make test-engines  real vLLM (CPU build) and Triton checks; slow, not part of make test"
	@echo "make lock          re-pin every dependency (constraints.txt) to its newest allowed version"

venv: $(STAMP) $(NATIVE_STAMP)

$(STAMP): pyproject.toml setup.py constraints.txt
	# -P: without it `python -m` puts this folder first on sys.path, where operator/ shadows the
	# stdlib module of that name and a fresh venv's pip cannot even start.
	test -x $(BIN)/python || $(PYTHON) -P -m venv $(VENV)
	# uv resolves this dependency set in seconds where pip backtracks for many minutes.
	$(BIN)/python -P -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev,demo]' --constraint constraints.txt
	touch $@

# constraints.txt pins every dependency (it installs nothing itself), so that a fresh machine runs
# the tests and benchmarks on the set CI last passed with, not on whatever LiteLLM or FastAPI
# released that morning. make lock re-resolves to the newest allowed versions; make test, then
# commit it.
lock:
	test -x $(BIN)/uv || $(MAKE) venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra demo --python $(BIN)/python \
		--quiet --upgrade --custom-compile-command 'make lock' -o constraints.txt

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	$(BIN)/python -P setup.py --quiet build_ext --inplace
	touch $@

test: venv
	$(BIN)/python -m pytest tests -q -p no:cacheprovider

test-unit: venv
	$(BIN)/python -m pytest tests/unit -q

test-component: venv
	$(BIN)/python -m pytest tests/component -q

test-e2e: venv
	$(BIN)/python -m pytest tests/e2e -q -m e2e

# vLLM's CPU build (~3.4 GB) and PyTriton get venvs of their own under .cache/engines, built once.
test-engines: venv
	tools/engines/setup-venvs.sh vllm triton
	$(BIN)/python -m pytest tests/engines -q -m engines -s -rxXs -p no:cacheprovider --timeout 1200

# mypy cannot follow setuptools' editable finder, so it reads a link tree that mirrors the
# installed layout (modelplane/, with operator/ and router/ mapped in).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf .typecheck && mkdir -p .typecheck/modelplane
	for entry in modelplane/*; do ln -s ../../$$entry .typecheck/modelplane/; done
	ln -s ../../operator .typecheck/modelplane/operator
	ln -s ../../router .typecheck/modelplane/router
	# From inside the link tree: mypy searches its working directory first, where the repository's
	# operator/ would shadow the stdlib module of that name.
	cd .typecheck && ../$(BIN)/mypy --config-file ../pyproject.toml --cache-dir ../.mypy_cache -p modelplane

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# `make demo REQUESTS=12` runs a shorter workload.
demo: venv
	$(BIN)/modelplane demo $(if $(REQUESTS),--requests $(REQUESTS))

bench: venv bench-tools
	$(BIN)/python -m bench --quick

bench-full: venv bench-tools
	$(BIN)/python -m bench

# HAProxy (Debian) is the benchmark's C pass-through; without it that one system is skipped.
bench-tools:
	@command -v haproxy >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get install -y -q haproxy >/dev/null; } \
		|| echo "haproxy not installed: the benchmark skips that system"

clean:
	rm -rf $(VENV) .typecheck .mypy_cache .ruff_cache build *.egg-info router/policy/_piiscan.*.so

# The chart ships copies of crds/ (Helm installs a chart's crds/ folder); crds/ stays the source.
chart-crds:
	tools/sync-chart-crds.sh
