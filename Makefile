# The README's commands.  Everything starts from a fresh machine with only
# Python: the set-up step creates .venv, installs the project into it and
# brings in the system tools the tests, docs and benchmarks call.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
RUN_DIR := run
HUB_DIR := $(RUN_DIR)/hub
PORT    ?= 8000
WEB_PORT ?= 9000
ZONE_USER ?= $(shell id -un 2>/dev/null || echo me)
# The data directories the README's tutorial and docs/mesh-portal.md's example make here.
TUTORIAL_DIRS := hub phone laptop portal mirror

.PHONY: run stop test fuzz bench docs clean systools docs-tools browsertools screenshots

$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@

# sslyze, the outside TLS scanner a test runs against the hub's ports, gets a
# virtualenv of its own: it pins cryptography below the version the project
# runs on.
SSLYZE  := $(VENV)/sslyze/bin/sslyze

$(SSLYZE): | $(STAMP)
	$(PYTHON) -m venv $(VENV)/sslyze
	$(VENV)/sslyze/bin/python -m pip install --quiet 'sslyze>=6.3.1'

# System tools the tests, benchmarks and docs call, installed where missing:
# $(call need,COMMAND,DEBIAN-PACKAGE ...)
define need
	@if ! command -v $(1) >/dev/null 2>&1; then \
	  echo "installing $(2)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null; \
	fi
endef

systools:
	$(call need,openssl,openssl)
	$(call need,rsync,rsync)

docs-tools:
	$(call need,dot,graphviz)

# The browser tests (tests/browser) drive Debian's Chromium through its
# ChromeDriver.
browsertools:
	$(call need,chromium,chromium)
	$(call need,chromedriver,chromium-driver)

run: $(STAMP) systools
	@$(MAKE) --no-print-directory stop >/dev/null 2>&1 || true
	@rm -rf $(RUN_DIR) && mkdir -p $(RUN_DIR)
	@$(BIN)/twistd --pidfile=$(RUN_DIR)/hub.pid --logfile=$(RUN_DIR)/hub.log \
	  pzh --data-dir $(HUB_DIR) --name $(ZONE_USER) --interface 127.0.0.1 \
	  --port $(PORT) --web-port $(WEB_PORT)
	@$(BIN)/pzctl --hub-dir $(HUB_DIR) wait --timeout 20
	@code=$$($(BIN)/pzctl --hub-dir $(HUB_DIR) pair --device phone) && \
	echo "" && \
	echo "Hub for zone $$($(BIN)/pzctl --hub-dir $(HUB_DIR) zone) is running on 127.0.0.1:$(PORT)" && \
	echo "  admin page (one-time sign-in link, 10 minutes): $$($(BIN)/pzctl --hub-dir $(HUB_DIR) admin-link)" && \
	echo "  log: $(RUN_DIR)/hub.log" && \
	echo "" && \
	echo "Pairing code for a device called 'phone' (valid 10 minutes, single use):" && \
	echo "" && \
	echo "    $$code" && \
	echo "" && \
	echo "Pair a device with it (in another terminal):" && \
	echo "    echo '$$code' | $(BIN)/twistd -n pzp --data-dir $(RUN_DIR)/phone --name phone --pair -" && \
	echo "then watch it:   $(BIN)/pzctl --hub-dir $(HUB_DIR) devices" && \
	echo "More codes:      $(BIN)/pzctl --hub-dir $(HUB_DIR) pair --device laptop" && \
	echo "Stop the hub:    make stop" && \
	echo ""

# A pid file whose process is gone (a crash, a reboot) is removed, not an error.
stop:
	@if [ -f $(RUN_DIR)/hub.pid ]; then \
	  if kill $$(cat $(RUN_DIR)/hub.pid) 2>/dev/null; then echo "hub stopped"; \
	  else echo "hub was not running (stale $(RUN_DIR)/hub.pid removed)"; rm -f $(RUN_DIR)/hub.pid; fi; \
	fi

test: $(STAMP) systools browsertools $(SSLYZE)
	$(BIN)/trial --jobs 2 tests

# The long fuzz run of the device and web ports (docs/fuzzing.md): about
# FUZZ_EXAMPLES examples per target, killed after FUZZ_TIMEOUT seconds,
# then a summary; fails if fewer than 100,000 frames and requests ran.
# Two trial processes, not trial --jobs: a worker of --jobs forwards every
# log line to its manager and holds it while a synchronous test runs, which
# the memory-growth check would count.
FUZZ_EXAMPLES ?= 2000
FUZZ_TIMEOUT  ?= 5400
FUZZ_OUT      := bench/out/fuzz
fuzz: $(STAMP) systools
	rm -rf $(FUZZ_OUT)
	export PZ_FUZZ_PROFILE=long PZ_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PZ_FUZZ_REPORT=$(CURDIR)/$(FUZZ_OUT); \
	  timeout $(FUZZ_TIMEOUT) $(BIN)/trial --temp-directory=_trial_temp.fuzz1 tests.fuzz.test_deviceport & dev=$$!; \
	  timeout $(FUZZ_TIMEOUT) $(BIN)/trial --temp-directory=_trial_temp.fuzz2 tests.fuzz.test_webport tests.fuzz.test_harness & web=$$!; \
	  wait $$dev; d=$$?; wait $$web; w=$$?; [ $$d = 0 ] && [ $$w = 0 ]
	$(BIN)/python -m tests.fuzz.report $(FUZZ_OUT) 100000

bench: $(STAMP) systools
	$(BIN)/python -m bench

# The admin page's pictures in docs/images (the README shows one), taken
# by the browser tests as they run.
screenshots: $(STAMP) browsertools
	PZ_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/trial tests.browser

docs: $(STAMP) docs-tools
	$(BIN)/python docs/state-machines/draw.py docs/state-machines

clean:
	rm -rf $(VENV) build dist *.egg-info _trial_temp* $(RUN_DIR) bench/out $(TUTORIAL_DIRS)
	find . -name __pycache__ -prune -exec rm -rf {} +
	find . -name dropin.cache -delete
