# iap-run-operator build entry points. Two commands matter on a fresh machine:
#   make demo   - the whole story on the embedded local world
#   make test   - installs what it needs, then lint, types, unit and integration tests
# Slow artefacts (uv, the control-plane binary, helm, the base image) live in $(CACHE), keyed by inputs.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export IAPRUN_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/iap-run-operator
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
VENV := .venv
PY := $(VENV)/bin/python
UV = $(shell ./hack/bootstrap-uv.sh)
# No PYTHONPATH: the operator (root project) and the local world (tests/pyproject.toml: gcpemu, testworld, bench)
# are installed editable into $(VENV) by `uv sync`; pytest adds tests/ for the test packages (pyproject).
EMULATOR_PORT ?= 8090

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.synced: pyproject.toml tests/pyproject.toml uv.lock hack/uv-requirements.txt
	$(UV) sync --frozen --all-groups
	touch $@

.PHONY: venv
venv: $(VENV)/.synced ## create the Python environment from uv.lock

.PHONY: tools
tools: venv ## fetch pinned kubectl/helm and build the control plane (cached)
	$(PY) -m testworld.tools all

.PHONY: lint
lint: venv ## ruff, mypy (strict on the operator and the local world), import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy hack/demo.py
	$(VENV)/bin/mypy --strict hack/gen_crd.py
	$(VENV)/bin/lint-imports --no-cache

.PHONY: unit
unit: venv ## pure-logic tests (no servers)
	$(VENV)/bin/pytest tests/unit -q

.PHONY: golden
golden: venv ## rewrite the golden request logs (tests/golden/logs) after a deliberate change; review the diff
	IAPRUN_GOLDEN_UPDATE=1 $(VENV)/bin/pytest tests/golden -q
	git status --short -- tests/golden/logs

.PHONY: test
test: venv tools lint image ## everything: lint, types, unit, admission, emulator, integration, chart, image
	$(VENV)/bin/pytest -q

.PHONY: bench
bench: tools ## benchmark (issue 9): full-size scenarios, prints a table, writes .bench/results.json (BENCH_ARGS=...)
	$(PY) -m bench $(BENCH_ARGS)

.PHONY: chaos
chaos: venv tools ## reliability campaign at full size (IAPRUN_CHAOS_SIZE=100, >= 10 SIGKILLs); prints the figures
	IAPRUN_CHAOS_SIZE=$${IAPRUN_CHAOS_SIZE:-100} IAPRUN_CHAOS_REPORT=$${IAPRUN_CHAOS_REPORT:-$(IAPRUN_CACHE)/chaos-report.json} \
		$(VENV)/bin/pytest tests/chaos -q

.PHONY: cluster
cluster: tools ## run the local control plane until interrupted; prints the KUBECONFIG to export
	$(PY) -m testworld.cluster

.PHONY: emulator
emulator: venv ## run the Google Cloud emulator in the foreground on 127.0.0.1:$(EMULATOR_PORT)
	$(PY) -m gcpemu --port $(EMULATOR_PORT)

.PHONY: docs
docs: venv ## regenerate what is generated: the CRD (Cloud Run v2 fields), the field reference, the chart's CRD, the values schema, the chart README
	$(PY) hack/gen_crd.py
	$(PY) hack/gen_reference.py
	$(PY) hack/gen_chart_crds.py
	$(PY) hack/gen_values_schema.py
	$(PY) hack/gen_chart_readme.py

.PHONY: clean
clean: ## remove the in-checkout environment (the user cache stays)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .bench

.PHONY: run
run: tools ## run the operator in the foreground against the current KUBECONFIG (installs the CRD first)
	$(VENV)/bin/kubectl apply --server-side -f crds/
	$(PY) -m iaprun_operator

.PHONY: demo
demo: tools ## the main job on the local world: control plane + emulator + operator + a protected service
	$(PY) hack/demo.py

.PHONY: image
image: ## build the operator image with buildah on a local Debian base (cached); prints its name
	./hack/image/build.sh

.PHONY: release
release: venv ## build and push the image and the chart to REGISTRY=host[:port]/path (version: pyproject.toml); docs/release.md
	@test -n "$(REGISTRY)" || { echo "usage: make release REGISTRY=registry.example.com/platform" >&2; exit 2; }
	$(PY) hack/release.py --registry "$(REGISTRY)" $(if $(DIST),--dist "$(DIST)") $(if $(CHANGELOG),--changelog "$(CHANGELOG)")
