# FieldCast build entry points. `make demo` and `make test` install what is missing first.
CARGO ?= cargo
FIELDCAST := target/release/fieldcast

.PHONY: deps build demo test bench bench-network fmt lint clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(CARGO) build --release -p fieldcast-cli

demo: build
	$(FIELDCAST) demo

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace

bench: build
	python3 bench/live_bench.py --fieldcast $(FIELDCAST)
	$(CARGO) run --release -q -p fieldcast-tests --bin commerce_bench

# Root only (network namespaces); elsewhere it says so and succeeds without measuring.
# Extra options: make bench-network NETWORK_ARGS="--profiles flaky,collapse --secs 60"
NETWORK_ARGS ?=
ifeq ($(shell id -u),0)
bench-network: build
	python3 bench/network_bench.py --fieldcast $(FIELDCAST) $(NETWORK_ARGS)
else
bench-network:
	@echo "bench-network skipped: the network lab needs root (network namespaces, tc, nftables); run: sudo make bench-network"
endif

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
