#!/usr/bin/env bash
# The whole test suite: installs what is missing, then checks formatting and
# lints and runs every test (unit, Playground over real TLS, the real keychain,
# sessionctl processes). Usage: bash scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_packages "${BASE_PACKAGES[@]}"
ensure_rust

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test (inside a private D-Bus session with gnome-keyring)"
with_test_keyring cargo test --workspace --locked "$@"
