# Berth — `make run` and `make test` are the whole quick start (README.md).
SWIFT ?= swift
# Every debug build (and so `swift test`) uses the strict flags CI requires, so the build is shared.
STRICT := -Xswiftc -warnings-as-errors --explicit-target-dependency-import-check error
# Release builds link the Swift runtime statically: exec-to-first-response drops from ~17 ms to ~5 ms.
RELEASE := $(SWIFT) build -c release --static-swift-stdlib
BERTH := .build/release/berth
PORT ?= 8080
EXAMPLE ?=
PYTHON ?= python3

.PHONY: deps build release run test unit integration bench bench-h3 fuzz fmt clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(STRICT)

release: deps
	$(RELEASE)

# Serves the built-in page (or EXAMPLE=1 for the seed's Example 1) on port $(PORT) through
# systemd socket activation, and prints how to reach it.
run: release
	@scripts/run.sh $(BERTH) $(PORT) "$(EXAMPLE)"

test: deps
	$(SWIFT) build $(STRICT) --build-tests
	$(SWIFT) test $(STRICT) --skip-build --parallel
	$(RELEASE)
	BERTH=$(BERTH) $(PYTHON) -m pytest -q Tests/integration

unit: deps
	$(SWIFT) test $(STRICT)

integration: release
	BERTH=$(BERTH) $(PYTHON) -m pytest -q Tests/integration

# The whole suite: Berth, Caddy, nginx in the direct, socket, pasta and podman-none modes (about
# 20 min; BENCH_ARGS=--quick for a smoke run, or --modes/--servers/--scenarios for a subset).
bench: release
	$(PYTHON) Benchmarks/suite.py --berth $(BERTH) $(BENCH_ARGS)

# Single-topic benchmarks in socket mode (hello + heap allocations, gzip/h2/TLS, files, proxy).
.PHONY: bench-hello bench-extra bench-static bench-proxy
bench-hello: release
	$(PYTHON) Benchmarks/bench.py --berth $(BERTH)

bench-extra: release
	$(PYTHON) Benchmarks/extra_bench.py --berth $(BERTH)

bench-static: release
	$(PYTHON) Benchmarks/static_bench.py --berth $(BERTH)

bench-proxy: release
	$(PYTHON) Benchmarks/proxy_bench.py --berth $(BERTH)

bench-h3: release
	$(PYTHON) Benchmarks/h3_bench.py --berth $(BERTH) --pin

fuzz:
	fuzz/run-http1.sh $${FUZZ_SECONDS:-600}

.PHONY: fuzz-caddyfile
fuzz-caddyfile:
	fuzz/run-caddyfile.sh $${FUZZ_SECONDS:-600}

clean:
	rm -rf .build
