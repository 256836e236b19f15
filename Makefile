# Two commands matter: `make run` (local stack) and `make test` (everything CI checks).
# Each does all of its own set-up: the venv, the Python packages and the Go-built binaries.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The runtime package (pyproject.toml) and the dev environment (devenv/pyproject.toml, kept
# out of the runtime wheel and image): a change to either re-installs both. devenv goes
# second because older scim-kube installs owned its `scim-devenv` script.
PYPROJECTS := pyproject.toml devenv/pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(PYPROJECTS) | sha256sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: venv binaries crds lint typecheck test test-fast unit e2e-cluster run bench bench-api bench-operator bench-scale clean

$(STAMP): $(PYPROJECTS)
	rm -f $(VENV)/.installed-*
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e ./devenv
	touch $@

venv: $(STAMP)

binaries: venv  ## build (once, cached in ~/.cache/scim-kube) etcd, kube-apiserver, kubectl, ...
	$(BIN)/scim-devenv binaries

crds: venv  ## regenerate deploy/crds from the Python models
	$(BIN)/scim-devenv crds

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: test-fast e2e-cluster  ## everything CI checks: test-fast, then the suite on a kind cluster

test-fast: venv binaries lint typecheck  ## ruff, mypy, the whole pytest suite (no kind cluster), branch coverage of the pure modules
	$(BIN)/pytest --cov --cov-report=term-missing $(PYTEST_ARGS)

# image -> kind cluster (node image built here when no registry answers) -> helm install
# (default values, Pod Security restricted) -> helm test -> e2e/ suite -> cluster deleted.
# KEEP_CLUSTER=1 keeps it; E2E_KUBECONFIG=... uses an existing cluster instead (README).
e2e-cluster: venv binaries
	e2e/cluster/e2e-cluster.sh

unit: venv  ## only the fast tests that need no control plane (with branch coverage of the pure modules)
	$(BIN)/pytest -m "not cluster" --cov --cov-report=term-missing $(PYTEST_ARGS)

run: venv binaries  ## local control plane + operator + SCIM API with a demo workspace
	$(BIN)/scim-devenv run

bench: bench-api bench-operator

bench-api: venv binaries
	$(BIN)/python -m bench.api

bench-operator: venv binaries
	$(BIN)/python -m bench.operator

bench-scale: venv binaries  ## 100,000 groups/users, 1M memberships; Entra first sync (long: see docs/benchmarks.md)
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) run .mypy_cache .pytest_cache .ruff_cache
