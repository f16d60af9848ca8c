# FieldCast build entry points. `make demo` and `make test` install what is missing first.
CARGO ?= cargo
FIELDCAST := target/release/fieldcast

.PHONY: deps build demo test bench fmt lint clean

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

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
