# goprobe: build, test and install. `make help` lists the targets.
PREFIX  ?= /usr/local/goprobe
DESTDIR ?=
CARGO   ?= cargo
# Where cargo puts its output (honours CARGO_TARGET_DIR) and the folder holding the
# binaries that install and demo use: the release build of `make compile` by default;
# BUILD=$(TARGET_DIR)/debug installs the debug binaries (what the system tests do).
TARGET_DIR ?= $(if $(CARGO_TARGET_DIR),$(CARGO_TARGET_DIR),target)
BUILD      ?= $(TARGET_DIR)/release
# Where the init script, unit and cron file go (below DESTDIR).
INITDIR    ?= /etc/init.d
SYSTEMDDIR ?= /lib/systemd/system
CRONDIR    ?= /etc/cron.d

.PHONY: all configure compile install uninstall clean test test-system fuzz-ci lint bench bench-compare demo help

# One step after the other, also under make -j.
all:
	$(MAKE) clean
	$(MAKE) compile
	$(MAKE) install

help:
	@echo "make configure   install missing Debian packages ($(BUILD_PKGS)), check the Rust toolchain"
	@echo "make compile     release build of goprobe and goquery"
	@echo "make install     install below DESTDIR/PREFIX (PREFIX=$(PREFIX)), init script, unit, cron job; BUILD=target/debug for a debug build"
	@echo "make uninstall   remove what install put in place (keeps the database and the config)"
	@echo "make test        the whole test suite (what CI runs): lint, cargo test, test-system, fuzz-ci"
	@echo "make test-system install, init script, cron retention and demo tests (tests/system; root for most)"
	@echo "make fuzz-ci     every fuzz target for FUZZ_SECS=$(FUZZ_SECS) s (0 skips); SKIP without a nightly toolchain"
	@echo "make demo        build, capture or replay into ./db, print a goquery report"
	@echo "make bench       criterion benchmarks"
	@echo "make bench-compare  goprobe/goquery against nfpcapd, nfdump, tcpdump on one capture (PCAP=FILE, RUNS=3); writes docs/BENCHMARKS.md"
	@echo "make all         clean configure compile install"

# Debian packages: what the build needs (libpcap's headers; a C compiler, which Rust
# also needs as its linker) and what the demo's traffic generator needs.
BUILD_PKGS ?= libpcap-dev gcc libc6-dev
DEMO_PKGS  ?= python3
# Installs the missing ones of $$PKGS (as root; otherwise says what to install).
# Outside Debian (no dpkg) it only says what the build expects.
APT_NEED = missing=""; \
	if ! command -v dpkg >/dev/null; then echo "no dpkg: make sure these are installed: $$PKGS"; exit 0; fi; \
	for p in $$PKGS; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; fi

# Install the system packages the build needs when they are missing, check the toolchain.
configure:
	@command -v $(CARGO) >/dev/null || { echo "configure: cargo not found: install Rust (https://rustup.rs)"; exit 1; }
	@PKGS="$(BUILD_PKGS)"; $(APT_NEED)
	@$(CARGO) --version

compile: configure
	$(CARGO) build --release --locked -p goprobe -p goquery

install:
	@[ -x $(BUILD)/goprobe ] && [ -x $(BUILD)/goquery ] || { echo "install: no goprobe and goquery in $(BUILD): run 'make compile' first"; exit 1; }
	install -d -m 0755 $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc $(DESTDIR)$(PREFIX)/share/doc/goprobe
	install -d -m 0750 $(DESTDIR)$(PREFIX)/db
	install -m 0755 $(BUILD)/goprobe $(BUILD)/goquery $(DESTDIR)$(PREFIX)/bin/
	@if [ -e $(DESTDIR)$(PREFIX)/etc/goprobe.toml ]; then \
	  echo "install: keeping the existing $(DESTDIR)$(PREFIX)/etc/goprobe.toml"; \
	else \
	  sed 's|@PREFIX@|$(PREFIX)|g' etc/goprobe.toml > $(DESTDIR)$(PREFIX)/etc/goprobe.toml; \
	  chmod 0644 $(DESTDIR)$(PREFIX)/etc/goprobe.toml; \
	fi
	install -m 0644 README.md LICENSE $(DESTDIR)$(PREFIX)/share/doc/goprobe/
	install -d $(DESTDIR)$(INITDIR) $(DESTDIR)$(SYSTEMDDIR) $(DESTDIR)$(CRONDIR)
	sed 's|@PREFIX@|$(PREFIX)|g' init/goprobe.init > $(DESTDIR)$(INITDIR)/goprobe
	chmod 0755 $(DESTDIR)$(INITDIR)/goprobe
	sed 's|@PREFIX@|$(PREFIX)|g' init/goprobe.service > $(DESTDIR)$(SYSTEMDDIR)/goprobe.service
	chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/goprobe.service
	sed 's|@PREFIX@|$(PREFIX)|g' cron/goprobe.cron > $(DESTDIR)$(CRONDIR)/goprobe
	chmod 0644 $(DESTDIR)$(CRONDIR)/goprobe

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/goprobe $(DESTDIR)$(PREFIX)/bin/goquery
	rm -f $(DESTDIR)$(INITDIR)/goprobe $(DESTDIR)$(SYSTEMDDIR)/goprobe.service $(DESTDIR)$(CRONDIR)/goprobe
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/goprobe
	@echo "uninstall: kept $(DESTDIR)$(PREFIX)/etc and $(DESTDIR)$(PREFIX)/db"

clean:
	$(CARGO) clean

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: lint
	$(CARGO) test --workspace --locked
	$(MAKE) test-system
	$(MAKE) fuzz-ci

# The short fuzz run of CI (docs/FUZZING.md): each cargo-fuzz target for FUZZ_SECS
# seconds on a throw-away corpus; fails on any input that crashes, runs out of memory or
# times out on its own. Needs a nightly toolchain (without one it prints a SKIP line and
# succeeds) and cargo-fuzz, installed from crates.io when missing (FUZZ_INSTALL=1; a
# failed install fails). FUZZ_SECS=0 skips it.
FUZZ_SECS ?= 30
fuzz-ci:
	FUZZ_INSTALL=1 ./scripts/fuzz.sh ci $(FUZZ_SECS)

# Shell tests of the installed system (tests/system/*.sh; README.md, Development): they
# install the debug binaries that `cargo test` already built into temporary folders.
# `cargo test --no-run` puts goprobe and goquery in place as the test build made them (a
# no-op after `cargo test`; `cargo build` would compile them again with other features).
test-system:
	$(CARGO) test --workspace --locked --no-run
	GOPROBE_BUILD=$(abspath $(TARGET_DIR))/debug tests/system/run.sh

bench:
	$(CARGO) bench -p goprobe-benches

# Builds first, unless there is no cargo but the binaries are built: `sudo make demo`
# after `make compile` (sudo's PATH and HOME do not reach the user's rustup toolchain).
demo:
	@if command -v $(CARGO) >/dev/null; then $(MAKE) --no-print-directory compile; \
	elif [ -x $(BUILD)/goprobe ] && [ -x $(BUILD)/goquery ]; then \
	  echo "demo: no $(CARGO) here (under sudo?): using the binaries already in $(BUILD)"; \
	else $(MAKE) --no-print-directory configure; fi
	@PKGS="$(DEMO_PKGS)"; $(APT_NEED)
	BIN=$(BUILD) ./scripts/demo.sh

# Side-by-side comparison with nfpcapd, nfdump and tcpdump (not part of test); see docs/BENCHMARKS.md.
bench-compare:
	CARGO=$(CARGO) ./scripts/bench-compare.sh $(PCAP)
