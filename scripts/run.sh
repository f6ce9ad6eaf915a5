#!/usr/bin/env bash
# Installs what is missing, builds, and opens the desktop app on its built-in
# Playground identity provider (sign in as alice / alice-pw-1).
#   bash scripts/run.sh          the desktop app
#   bash scripts/run.sh --cli    the same flow in a terminal with sessionctl
#                                (for machines without a display)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

mode=app
[ "${1:-}" = --cli ] && mode=cli

if [ "$mode" = app ]; then
  ensure_packages "${BASE_PACKAGES[@]}" "${APP_PACKAGES[@]}"
else
  ensure_packages "${BASE_PACKAGES[@]}"
fi
ensure_rust

if [ -z "${SESSION_MANAGER_IN_KEYRING:-}" ] && [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  say "no desktop session bus: using a private one with a throwaway gnome-keyring"
  SESSION_MANAGER_IN_KEYRING=1 with_test_keyring bash "$0" "$@"
  exit $?
fi

if [ "$mode" = app ]; then
  if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
    say "no display (DISPLAY or WAYLAND_DISPLAY): the desktop app needs one. On a headless machine use: bash scripts/run.sh --cli"
    exit 1
  fi
  say "building the app"
  cargo build --locked --quiet -p session-manager
  say "opening Session Manager on the built-in Playground (demo user alice / alice-pw-1; tokens live ${SESSION_MANAGER_PLAYGROUND_LIFETIME:-120} s)"
  exec ./target/debug/session-manager "$@"
fi

say "building"
cargo build --locked --quiet -p playground -p sessionctl

work=$(mktemp -d)
cleanup() {
  [ -n "${pg_pid:-}" ] && kill "$pg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

lifetime=${DEMO_TOKEN_LIFETIME:-30}
say "starting the Playground (tokens live ${lifetime} s)"
./target/debug/playground --json --lifetime "$lifetime" --dir "$work" --write-config "$work/config.toml" > "$work/playground.json" &
pg_pid=$!
for _ in $(seq 100); do [ -s "$work/playground.json" ] && break; sleep 0.1; done
[ -s "$work/config.toml" ] || { say "the Playground did not start"; exit 1; }

export SESSION_MANAGER_CONFIG="$work/config.toml" SESSION_MANAGER_DATA_DIR="$work/data"
ctl=./target/debug/sessionctl
say "signing in as alice (demo user; password alice-pw-1)"
printf '%s\n' alice-pw-1 | $ctl login --username alice --password-stdin
say "calling GET /api/v2/accounts with the session"
$ctl call GET /api/v2/accounts
say "watching the session refresh itself (Ctrl-C to stop)"
$ctl watch ${DEMO_SECONDS:+--seconds "$DEMO_SECONDS"} || true
say "signing out"
$ctl logout
say "audit log"
$ctl audit
