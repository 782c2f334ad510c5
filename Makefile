# goprobe: build, test and install. `make help` lists the targets.
PREFIX  ?= /usr/local/goprobe
DESTDIR ?=
CARGO   ?= cargo

.PHONY: all configure compile install uninstall clean test lint bench help

all: clean configure compile install

help:
	@echo "targets: all configure compile install uninstall clean test lint bench"

# Install the system packages the build needs when they are missing, check the toolchain.
configure:
	@command -v $(CARGO) >/dev/null || { echo "configure: cargo not found: install Rust (https://rustup.rs)"; exit 1; }
	@missing=""; for p in libpcap-dev pkg-config; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "configure: missing packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; fi; \
	fi
	@$(CARGO) --version

compile:
	$(CARGO) build --release --locked -p goprobe -p goquery

clean:
	$(CARGO) clean

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

test: lint
	$(CARGO) test --workspace --locked

bench:
	$(CARGO) bench -p goprobe-benches
