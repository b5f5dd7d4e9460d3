# The two commands of the README: `make run` and `make test`. Both do every set-up step
# (virtual environment, Python and npm packages, demo models, web client build) and skip
# the steps whose inputs have not changed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run TLS=1 HOST=0.0.0.0`: HTTPS for phones on the same Wi-Fi (docs/phones.md).
TLS ?=
CORES := $(shell nproc 2>/dev/null || echo 2)
# make test: processes for the tests without a browser, three for two cores: they wait much
# of the time (servers and nodes starting, sleeps to a window edge, subprocesses), so more
# processes than cores keep the cores busy; two per core starved the timing tests' own
# servers (docs/testing.md, Test time).
TEST_WORKERS ?= $(shell echo $$((3 * $(CORES) / 2)))
# make test: processes for the browser tests (each runs its own Chromium): one more than
# the cores.
BROWSER_WORKERS ?= $(shell echo $$(($(CORES) + 1)))
# A module's tests in one process; the modules handed out longest first, by the times of the
# last run (tests/support/order.py), not by xdist's count of tests.
DIST := --dist loadfile --no-loadscope-reorder

.PHONY: run test fuzz setup lint validate bench clean

run: setup
	$(BIN)/holobazaar serve --host $(HOST) --port $(PORT) $(if $(TLS),--tls)

test: setup
	$(BIN)/ruff check server tests bench assets
	# Types: [tool.mypy] in pyproject.toml (docs/testing.md).
	$(BIN)/mypy server
	$(BIN)/holobazaar validate .
	# Two runs: the tests without a browser spread over every core (a module's tests stay in
	# one process: module fixtures, and tests that build on the one before), then the browser tests
	# (their Playwright loop cannot share a process with asyncio.run()), also a module per process,
	# each process with its own Chromium: 315 s on two processes against about 480 s in one.
	# Both run even if the first fails; make fails if either did (5: PYTEST_ARGS selected
	# no test of that kind, which is fine).
	rc=0; $(BIN)/python -m pytest -n $(TEST_WORKERS) $(DIST) -m "not browser" $(PYTEST_ARGS) \
	  || { c=$$?; [ $$c -eq 5 ] || rc=$$c; }; \
	  $(BIN)/python -m pytest -n $(BROWSER_WORKERS) $(DIST) -m browser $(PYTEST_ARGS) \
	  || { c=$$?; [ $$c -eq 5 ] || rc=$$c; }; \
	  exit $$rc

# `make fuzz`: the fuzzers of tests/fuzz with the deep budget (new random examples each run,
# minutes); `make test` runs them with a small fixed budget (docs/testing.md).
fuzz: setup
	HOLOBAZAAR_FUZZ=deep $(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

setup: $(STAMP) assets/build/.built web-client/dist/.built tools/gltf/node_modules/.installed \
  bench/node/node_modules/.installed

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

assets/build/.built: $(STAMP) assets/generate.py
	$(BIN)/python assets/generate.py --out assets/build
	touch $@

WEB_SOURCES := $(shell find web-client -path web-client/node_modules -prune -o -path web-client/dist -prune -o -type f -print 2>/dev/null)

web-client/dist/.built: $(WEB_SOURCES)
	@if [ -f web-client/package.json ]; then \
	  cd web-client && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	else mkdir -p web-client/dist; fi
	touch $@

# The asset pipeline's Node tools (glTF-Transform, meshoptimizer, sharp, the Khronos
# validator): installed from the lock file, never downloaded at run time.
tools/gltf/node_modules/.installed: tools/gltf/package.json tools/gltf/package-lock.json
	cd tools/gltf && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check server tests bench assets
	$(BIN)/ruff format --check server tests bench assets

validate: $(STAMP)
	$(BIN)/holobazaar validate .

# `make bench`: the benchmarks' Python extra (`bench`: matplotlib for the plots), then the
# fan-out benchmark at 500 clients. The full run: `$(BIN)/python bench/fanout.py --full`
# (docs/performance.md).
bench: setup $(VENV)/.bench-installed
	$(BIN)/python bench/fanout.py --clients 500 --rate 10 --seconds 10

$(VENV)/.bench-installed: $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# The fan-out benchmark's Node part (`ws`: its load generator and peer); in `setup`
# because tests/test_bench_fanout.py runs the benchmark's smoke mode.
bench/node/node_modules/.installed: bench/node/package.json bench/node/package-lock.json
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) assets/build web-client/node_modules web-client/dist tools/gltf/node_modules \
	  bench/node/node_modules
