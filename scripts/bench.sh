#!/usr/bin/env bash
# The benchmarks that need no display: the engine's (calls, refreshes,
# outages) and sessionctl's wake-ups, inside a private D-Bus session with
# gnome-keyring (sessionctl keeps its session in the keychain).
# The desktop benchmarks need a display: see e2e/benches/desktop.rs.
# Usage: bash scripts/bench.sh [cargo bench arguments, e.g. --bench wakeups]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_packages "${BASE_PACKAGES[@]}"
ensure_rust
with_test_keyring cargo bench --locked -p integration -p sessionctl "$@"
