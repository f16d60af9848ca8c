# FieldCast build entry points. `make demo` and `make test` install what is missing first.
CARGO ?= cargo
FIELDCAST := target/release/fieldcast

.PHONY: deps build bindings demo test check-phones test-kotlin test-swift bench bench-push bench-pixels bench-record bench-wakeups bench-network soak qa fuzz fmt lint clean

deps:
	@bash scripts/install-deps.sh
	@bash scripts/install-kotlin.sh

# Kotlin and Swift bindings of fieldcast-ffi in target/bindings/ (generated, not committed).
bindings:
	bash scripts/bindings.sh kotlin swift

build: deps
	$(CARGO) build --release -p fieldcast-cli

demo: build
	$(FIELDCAST) demo

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) build --workspace --all-targets
	$(CARGO) test --workspace
	$(MAKE) --no-print-directory check-phones
	bash scripts/phone-contents.sh
	$(MAKE) --no-print-directory test-kotlin
	$(MAKE) --no-print-directory test-swift

# The core and the bindings compile for Android (arm64, 32-bit ARM) and iOS: cargo check per target.
# A Rust target that cannot be installed is skipped with a message; a compile error fails.
check-phones:
	bash scripts/phone-check.sh

# The Kotlin SDK layer on the JVM against the real library, then the Android layer and the
# sample compiled against android-all and the Robolectric tests.
test-kotlin:
	bash scripts/kotlin-test.sh
	bash scripts/android-check.sh

# The Swift package checked without a Swift compiler: tree-sitter-swift parses every file with no
# error node, the shell's calls match the generated bindings, docs/API.md lists every public member.
test-swift:
	bash scripts/swift-check.sh

bench: build
	python3 bench/live_bench.py --fieldcast $(FIELDCAST)
	$(CARGO) run --release -q -p fieldcast-tests --bin commerce_bench
	$(MAKE) --no-print-directory bench-push
	$(MAKE) --no-print-directory bench-pixels
	$(MAKE) --no-print-directory bench-record
	$(MAKE) --no-print-directory bench-wakeups

# Context switches per second of a live session's threads (BASELINE=path/to/fieldcast adds an
# earlier build, measured the same way in the same run).
BASELINE ?=
bench-wakeups: build
	python3 bench/wakeups_bench.py --fieldcast $(FIELDCAST) $(if $(BASELINE),--baseline $(BASELINE))

# The same noisy clip pushed by fieldcast, ffmpeg and gst-launch with the same x264 settings, at
# veryfast and ultrafast: the CPU around the encoder. Where it goes: scripts/perf-breakdown.sh.
bench-pixels: build
	python3 bench/pixels_bench.py --fieldcast $(FIELDCAST)

# The CPU and peak RSS of `fieldcast live --record` against the same session without, on loopback
# and through a throttled relay (the adaptive bitrate lowers the live stream, the recording keeps
# full quality with an encoder of its own).
bench-record: build
	python3 bench/record_bench.py --fieldcast $(FIELDCAST)

# 720p30 NV12 frames pushed from Kotlin against the same frames pushed from Rust.
bench-push: build
	$(CARGO) build --release -q -p fieldcast-tests --bin push_bench -p fieldcast-ffi
	bash scripts/kotlin-sdk.sh
	python3 bench/push_bench.py --fieldcast $(FIELDCAST)

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

# Root only. About 45 minutes: 1,000 power cuts of a selling, syncing child on the power-cut
# filesystem (FUSE), then a 30-minute live through the network lab with 100 outages, sales, pins
# and the recording, sampled every 10 s against its targets (report and plot in the printed dir).
# Extra options: make soak SOAK_ARGS="--minutes 10 --outages 30"
SOAK_ARGS ?=
ifeq ($(shell id -u),0)
soak: deps
	FIELDCAST_POWER_CUTS=1000 $(CARGO) test -p fieldcast-tests --test power_cut -- --nocapture
	$(CARGO) build --release -p fieldcast-tests --bins -p fieldcast-cli
	target/release/soak $(SOAK_ARGS)
else
soak:
	@echo "soak skipped: power cuts (FUSE mounts) and the network lab need root; run: sudo make soak"
endif

# Root only. About 15 minutes: the field lab's four shipped scenarios (market-day, hilltop, tunnel,
# power-cut) on their emulated phones and networks, then market-day on the desktop profile,
# compared. Prints each scenario's summary line and where the reports are (QA_OUT=dir to choose).
# Only some: make qa QA_SCENARIOS="tunnel power-cut"
QA_SCENARIOS ?=
ifeq ($(shell id -u),0)
qa: build
	bash scripts/qa.sh $(QA_SCENARIOS)
else
qa:
	@echo "qa skipped: the field lab needs root (network namespaces, cgroups); run: sudo make qa"
endif

# Each cargo-fuzz target for FUZZ_SECONDS (default 600), one after the other; corpora in fuzz/corpus.
# Only some targets: make fuzz FUZZ_TARGETS="sei frame"
FUZZ_TARGETS ?=
fuzz:
	bash scripts/fuzz.sh $(FUZZ_TARGETS)

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p fieldcast-core -p fieldcast-ffi --all-targets -- -D warnings

clean:
	$(CARGO) clean
