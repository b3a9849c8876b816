# Thin targets; CMake does the work. `make dev` and `make test` each work on a fresh Debian 12.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_PACKAGES := build-essential cmake ninja-build ccache pkg-config git curl ca-certificates \
  libboost1.81-dev libboost-json1.81-dev libsqlite3-dev libpq-dev libssl-dev \
  libhowardhinnant-date-dev tzdata \
  libspdlog-dev libfmt-dev libcli11-dev libyaml-cpp-dev \
  libgtest-dev libgmock-dev libbenchmark-dev clang-format \
  postgresql postgresql-contrib sqlite3 wrk hyperfine nginx-light ansible-core

.PHONY: deps build build-asan dev test test-fast bench format clean openapi-deps

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@# Node.js runs the OpenAPI linter. Machines that already have node/npm from elsewhere (e.g.
	@# nodesource, whose nodejs conflicts with Debian's npm) keep theirs.
	@command -v npm >/dev/null 2>&1 || { \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DDROVER_SANITIZE=ON

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

openapi-deps:
	@cd tools/openapi && { [ -x node_modules/.bin/redocly ] || npm ci --no-audit --no-fund --loglevel=error; }

dev: build
	$(BUILD)/drover server --dev

# Every test, twice: the normal build and the AddressSanitizer + UBSan build.
test: build build-asan openapi-deps
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

bench: build
	bench/http.sh && bench/writes.sh && bench/writes.sh --db postgres && bench/scale_out.sh && \
	  bench/cc.sh && bench/agent.sh && bench/fleet.sh && bench/fleet_scale.sh && bench/schedules.sh

format:
	find src testing tests -name '*.h' -o -name '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
