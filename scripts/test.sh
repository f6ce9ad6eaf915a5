#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks formatting and lints,
# builds the app, and runs every test: unit, the Playground over real TLS, the
# real keychain, sessionctl processes, the shell on Tauri's mock runtime, and
# the end-to-end scenarios through tauri-driver under Xvfb.
# Usage: bash scripts/test.sh            everything
#        E2E=only bash scripts/test.sh   only the end-to-end scenarios
#        E2E=skip bash scripts/test.sh   everything but them
# Extra arguments go to the end-to-end `cargo test` (e.g. a scenario name).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_packages "${BASE_PACKAGES[@]}" "${APP_PACKAGES[@]}" "${E2E_PACKAGES[@]}"
ensure_rust
ensure_tauri_driver

E2E=${E2E:-run}
if [ "$E2E" != only ]; then
  say "cargo fmt --check"
  cargo fmt --all -- --check
  say "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi
say "building the app"
cargo build --locked -p session-manager
cargo test --locked --workspace --no-run --quiet

ensure_display
trap '[ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null || true' EXIT

steps=()
[ "$E2E" != only ] && steps+=("cargo test --locked --workspace --exclude e2e")
# Scenarios take a lock and run one at a time anyway; one thread keeps their
# output in order.
[ "$E2E" != skip ] && steps+=("cargo test --locked -p e2e -- --test-threads=1 $*")
say "running the tests inside a private D-Bus session with gnome-keyring"
with_test_keyring bash -c "set -e; $(printf '%s; ' "${steps[@]}")"
