# weft: the commands people type. CMake does the building (see CMakePresets.json);
# this file only names the common jobs.
#
#   make demo            build (quietly) and run the tour of the examples
#   make test            build and run the whole test suite (release build)
#   make test-asan       the suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make test-tsan       the suite under ThreadSanitizer
#   make test-clang      build with clang -Werror and run the suite
#   make test-aarch64    the context switch and async tests built for aarch64
#                        and run under qemu-user (installs the cross
#                        compiler and qemu-user-static; tests/aarch64.sh)
#   make coverage        the suite in a coverage build, then line and branch
#                        coverage of src/ per layer (installs gcovr)
#   make check-all       the before-release check: everything CI runs, plus
#                        coverage and the stress tests repeated
#   make bench           install the baselines (Debian packages), run every
#                        benchmark suite, then the hand-off suites (sync,
#                        queue, pool) again beside LOAD busy threads (2;
#                        LOAD=0 skips those passes), once per placement in
#                        PLACES ("one spread": all of a case's threads on
#                        one CPU, then spread over all); SUITES="thread"
#                        picks some, JSON=1 also writes build/bench.jsonl
#   make install         install to PREFIX (default /usr/local)
#   make format          reformat the sources; make format-check only checks
#   make clean           remove build/

PREFIX ?= /usr/local
SUITES ?=
JSON ?=
LOAD ?= 2
PLACES ?= one spread
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cpp' 2>/dev/null || \
                 find src include tests bench examples -name '*.[ch]' -o -name '*.cpp')

.PHONY: all build demo test test-asan test-tsan test-clang test-aarch64 coverage check-all bench install format \
        format-check clean

all: build

build: build/release/CMakeCache.txt
	cmake --build build/release -j $(JOBS)

build/release/CMakeCache.txt:
	@command -v cmake >/dev/null || { echo "weft needs cmake: apt-get install cmake"; exit 1; }
	cmake --preset release

build/%/CMakeCache.txt:
	cmake --preset $*

# The tour's reader wants the tour, not the compiler's lines: build quietly,
# show the log only if the build fails.
demo:
	@command -v cmake >/dev/null || { echo "weft needs cmake: apt-get install cmake"; exit 1; }
	@mkdir -p build
	@echo "Building weft (the log is in build/demo-build.log)..."
	@{ [ -f build/release/CMakeCache.txt ] || cmake --preset release; } >build/demo-build.log 2>&1 && \
	    cmake --build build/release -j $(JOBS) >>build/demo-build.log 2>&1 || \
	    { tail -n 40 build/demo-build.log; echo "make demo: the build failed"; exit 1; }
	@sh examples/tour.sh build/release/examples

test: build
	ctest --preset release

test-asan: build/asan/CMakeCache.txt
	cmake --build build/asan -j $(JOBS)
	ctest --preset asan

test-tsan: build/tsan/CMakeCache.txt
	cmake --build build/tsan -j $(JOBS)
	ctest --preset tsan

test-aarch64:
	sh tests/aarch64.sh

test-clang: build/clang/CMakeCache.txt
	cmake --build build/clang -j $(JOBS)
	ctest --preset clang

coverage: build/coverage/CMakeCache.txt
	@command -v gcovr >/dev/null || { apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -yq gcovr; }
	find build/coverage -name '*.gcda' -delete
	cmake --build build/coverage -j $(JOBS)
	ctest --preset coverage
	sh tests/coverage.sh $(CURDIR) build/coverage

# What CI runs, and what does not fit in its time: coverage, and the stress
# tests five times over.
check-all:
	bash .ci/run
	$(MAKE) coverage
	ctest --preset release -L stress --repeat until-fail:5

# The loaded passes: the suites whose cases wait, among those SUITES picks,
# once per placement (bench/place.c says why a loaded run needs one).
BENCH = build/release/bench/weft-bench $(if $(JSON),--json)
LOADED_SUITES = $(if $(SUITES),$(filter sync queue pool,$(SUITES)),sync queue pool)

bench:
	sh bench/deps.sh
	cmake --preset release >/dev/null
	cmake --build build/release -j $(JOBS)
	$(BENCH) $(SUITES) $(if $(JSON),| tee build/bench.jsonl)
	$(if $(filter-out 0,$(LOAD)),$(if $(LOADED_SUITES),$(foreach p,$(PLACES), \
	    $(BENCH) --load $(LOAD) --place $(p) $(LOADED_SUITES) \
	    $(if $(JSON),| tee -a build/bench.jsonl) &&) true))

install: build
	cmake --install build/release --prefix $(PREFIX)

format:
	clang-format -i $(FORMAT_FILES)

format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build
