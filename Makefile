# Thin targets; CMake does the work. `make dev` and `make test` each work on a fresh Debian 12.
BUILD      ?= build
DEV_BUILD  ?= build-dev
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PREFIX     ?= /usr/local
# Seconds each fuzz target runs: briefly in `make test`, as long as you like in `make fuzz`.
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_SECONDS       ?= 600

# What building and running drover needs (make dev).
RUN_PACKAGES := build-essential cmake ninja-build ccache pkg-config git ca-certificates \
  libboost1.81-dev libboost-json1.81-dev libsqlite3-dev libpq-dev libssl-dev \
  libhowardhinnant-date-dev tzdata libfmt-dev libcli11-dev libyaml-cpp-dev
# What the tests, fuzzers and benchmarks need on top (make test, make fuzz, make bench).
TEST_PACKAGES := $(RUN_PACKAGES) curl libgtest-dev libgmock-dev libbenchmark-dev clang-format \
  clang libclang-rt-14-dev postgresql postgresql-contrib sqlite3 wrk hyperfine nginx-light \
  ansible-core prometheus chromium

.PHONY: deps test-deps ui-deps build build-dev build-asan build-fuzz dev test test-fast fuzz fuzz-smoke \
  bench format clean install openapi-deps

# Installs the Debian packages named in $(1) that are missing.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(RUN_PACKAGES))
	@$(MAKE) --no-print-directory ui-deps

test-deps:
	$(call apt_install,$(TEST_PACKAGES))
	@$(MAKE) --no-print-directory ui-deps

# Node.js bundles the dashboard (ui/) at build time and runs the OpenAPI linter and the browser
# tests. Machines that already have node/npm from elsewhere (e.g. nodesource, whose nodejs
# conflicts with Debian's npm) keep theirs. npm ci installs exactly ui/package-lock.json.
ui-deps:
	@command -v npm >/dev/null 2>&1 || { \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
	@cd ui && { cmp -s package-lock.json node_modules/.installed-lock.json 2>/dev/null || { \
	  npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.installed-lock.json; }; }

# The dev build: only the drover binary, optimized lightly and without debug info (the fastest
# build that still serves well), in its own directory so `make test` keeps its flags.
$(DEV_BUILD)/build.ninja:
	cmake -S . -B $(DEV_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O1 \
	  -DDROVER_TESTS=OFF

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DDROVER_SANITIZE=ON

$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDROVER_FUZZ=ON \
	  -DCMAKE_CXX_COMPILER=clang++

build-dev: deps $(DEV_BUILD)/build.ninja
	cmake --build $(DEV_BUILD) -j $(JOBS) --target drover

build: test-deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

build-asan: test-deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

build-fuzz: test-deps $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets

openapi-deps:
	@cd tools/openapi && { [ -x node_modules/.bin/redocly ] || npm ci --no-audit --no-fund --loglevel=error; }

dev: build-dev
	$(DEV_BUILD)/drover server --dev

# Puts the binary on the PATH: $(PREFIX)/bin/drover.
install: build-dev
	$(SUDO) install -D -m 0755 $(DEV_BUILD)/drover $(PREFIX)/bin/drover

# Every test, twice (the normal build and the AddressSanitizer + UBSan build), then each fuzz
# target for a short while.
test: build build-asan build-fuzz openapi-deps
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900
	fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

fuzz-smoke: build-fuzz
	fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

# Each fuzz target for FUZZ_SECONDS (make fuzz FUZZ_SECONDS=3600); findings in
# $(FUZZ_BUILD)/fuzz-work/<target>/findings/.
fuzz: build-fuzz
	fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	bench/http.sh && bench/writes.sh && bench/writes.sh --db postgres && bench/scale_out.sh && \
	  bench/cc.sh && bench/agent.sh && bench/fleet.sh && bench/fleet_scale.sh && bench/schedules.sh && bench/stream.sh && bench/logs.sh && build/src/alerts_bench && bench/ui.sh

format:
	find src testing tests fuzz -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(DEV_BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
