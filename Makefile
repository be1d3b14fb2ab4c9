# Thin wrapper over CMake: `make demo`, `make test`, `make bench` and friends.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?= -DATTUNE_WERROR=ON

.PHONY: all deps build build-asan test unit demo bench format clean fuzz fuzz-smoke

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DATTUNE_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# A short pass of every fuzz target, then the whole suite twice: under
# AddressSanitizer + UndefinedBehaviorSanitizer, and against the optimised
# build (where the memory figures, the fault tests and valgrind run). ctest's
# summary of that last run is the last thing printed.
test: build build-asan fuzz-smoke
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -LE 'memory|faults'
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

unit: build
	@cd $(BUILD) && ctest --output-on-failure -L unit

demo: build
	@scripts/demo

bench: build
	@bench/run-action
	@echo
	@bench/ns-floor
	@echo
	@bench/fork-floor
	@echo
	@bench/e2e
	@echo
	@bench/spares
	@echo
	@bench/tail

# libFuzzer targets (tests/fuzz) in their own clang build; each runs
# FUZZ_SECONDS over its seed corpus and the inputs it found before.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= envelope config action_yaml secret_decode params_format pymarshal http

fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTUNE_FUZZ=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	@tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The short pass CI runs.
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
