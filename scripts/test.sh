#!/usr/bin/env bash
# The whole test suite: installs what is missing, checks formatting and lints,
# builds the app, and runs every test: unit, the Playground over real TLS, the
# real keychain, sessionctl processes, the shell on Tauri's mock runtime, and
# the end-to-end scenarios through tauri-driver under Xvfb.
# Usage: bash scripts/test.sh            everything
#        E2E=only bash scripts/test.sh   only the end-to-end scenarios
#        E2E=skip bash scripts/test.sh   everything but them (and the package)
#        PACKAGE=skip bash scripts/test.sh   everything but the package step
# The package step builds the packages (scripts/package.sh --debug),
# installs the app's .deb with apt (as root, or with sudo), starts the
# installed app under the display and checks its first-run screen, installs
# the Playground's package beside it and uses "Try the demo" up to the
# demo's sign-in screen, then removes both; then it installs the .rpm into a
# scratch root and checks the first-run screen from there.
# Extra arguments go to the test binaries (e.g. a test or scenario name).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_packages "${BASE_PACKAGES[@]}" "${APP_PACKAGES[@]}" "${E2E_PACKAGES[@]}"
ensure_node
ensure_rust
ensure_tauri_driver
ensure_axe

E2E=${E2E:-run}
# A test run builds once from scratch or nearly so: incremental compilation
# state would only take disk (hundreds of MB per test binary) for no gain.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
if [ "$E2E" != only ]; then
  say "cargo fmt --check"
  cargo fmt --all -- --check
  say "cargo clippy"
  cargo clippy --workspace --all-targets --locked -- -D warnings
  # The app without its built-in Playground (the `playground` feature) builds too.
  cargo clippy -p session-manager --no-default-features --locked -- -D warnings
  say "UI unit tests (node --test)"
  node --test tests/ui/
  say "links between the README and docs/"
  node scripts/check-links.mjs
  say "core's layers import one way, down"
  node scripts/check-layers.mjs
  say "cargo doc (the engine's API pages, no broken link)"
  RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -p session-core --quiet
fi
# One `cargo test` for everything, so every crate is built once with the
# same features. The end-to-end scenarios take a lock and run one at a time.
case "$E2E" in
  skip) what=(--workspace --exclude e2e) ;;
  only) what=(-p e2e) ;;
  *) what=(--workspace) ;;
esac
say "building the app and the tests"
# The scenarios need the app's test-opener feature (browser pages go to files
# the tests read). `cargo test --workspace` turns it on through the e2e
# crate's dev-dependency; alone, the e2e crate does not build the binary.
if [ "$E2E" = only ]; then cargo build --locked -p session-manager --features test-opener -p sessionctl; fi
cargo test --locked "${what[@]}" --no-run --quiet

ensure_display
trap '[ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null || true' EXIT

say "running the tests inside a private D-Bus session with gnome-keyring"
# The tests' temporary files go to a directory of this run's own. Nothing of
# the app's may be left in it afterwards: a data directory written again
# after its test removed it (an engine or an app outliving its test), or a
# Playground's certificate folder, fails the run.
test_tmp=$(mktemp -d)
TMPDIR=$test_tmp with_test_keyring cargo test --locked "${what[@]}" -- "$@" || {
  rc=$?
  rm -rf "$test_tmp"
  exit $rc
}
# A data directory written after its removal fails the run (an audit log,
# anything of the app's). The last such writer was a renewal's audit record
# written on the blocking pool after its engine test had returned; a log
# whose directory was removed is no longer made again (paths::RotatingFile).
# (Depth 2: the end-to-end harness's own lock file sits at the top.)
left=$(find "$test_tmp" -mindepth 2 \( -name '*.jsonl' -o -name '*.journal' -o -name '*.lock' -o -name '*.changed' \) -print)
if [ -n "$left" ]; then
  echo "error: the tests wrote these after their directory was removed (kept in $test_tmp for a look):" >&2
  echo "$left" >&2
  exit 1
fi
left=$(find "$test_tmp" -mindepth 1 -name 'session-manager-playground-*' -print)
if [ -n "$left" ]; then
  echo "error: the tests left these Playground folders behind (kept in $test_tmp for a look):" >&2
  echo "$left" >&2
  exit 1
fi
[ -n "$(find "$test_tmp" -mindepth 1 -name audit.jsonl -print -quit)" ] || rm -rf "$test_tmp"

if [ "$E2E" != skip ] && [ "${PACKAGE:-run}" != skip ] && [ $# -eq 0 ]; then
  say "the packages: build them, install the app, start it, try the demo, remove them"
  bash scripts/package.sh --debug
  deb=$(ls -t target/debug/bundle/deb/session-manager_*.deb | head -n 1)
  pgdeb=$(ls -t target/debug/bundle/playground/session-manager-playground_*.deb | head -n 1)
  name=$(dpkg-deb -f "$deb" Package)
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  # A run of this step cut short (killed while apt installed) leaves our own
  # packages half-installed, and dpkg then refuses every install ("dpkg was
  # interrupted") until they are repaired: take them out first.
  "${sudo[@]}" dpkg --remove --force-remove-reinstreq "$name" session-manager-playground >/dev/null 2>&1 || true
  "${sudo[@]}" dpkg --configure -a
  # apt resolves the package's dependencies (all present after the build's).
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "./$deb" >/dev/null
  trap '[ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null; "${sudo[@]}" dpkg -r "$name" session-manager-playground >/dev/null 2>&1 || true' EXIT
  dpkg -L "$name" | grep -qx /usr/bin/sessionctl
  dpkg -L "$name" | grep -qx /usr/share/applications/dev.sessionmanager.SessionManager.desktop
  dpkg -L "$name" | grep -qx /usr/share/icons/hicolor/128x128/apps/dev.sessionmanager.SessionManager.png
  /usr/bin/sessionctl --version
  # The app holds no Playground of its own.
  ! command -v session-manager-playground >/dev/null
  with_test_keyring cargo run --locked --quiet -p e2e --bin check-installed -- /usr/bin/session-manager first-run
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "./$pgdeb" >/dev/null
  with_test_keyring cargo run --locked --quiet -p e2e --bin check-installed -- /usr/bin/session-manager demo
  "${sudo[@]}" dpkg -r "$name" session-manager-playground >/dev/null
  say "installed, started, tried the demo with, and removed $deb and $pgdeb"

  # The .rpm on this Debian machine: rpm installs it into a scratch root
  # (--nodeps: its dependencies carry Fedora's names, which dpkg does not
  # know; --noscripts: it has none). It must hold the same files as the
  # .deb, and the app installed from it must reach its sign-in screen.
  say "the .rpm: install it into a scratch root, compare it with the .deb, start the app from there"
  ensure_packages rpm
  rpmfile=$(ls -t target/debug/bundle/rpm/session-manager-*.rpm | head -n 1)
  rpmroot=$(mktemp -d)
  trap '[ -n "${XVFB_PID:-}" ] && kill "$XVFB_PID" 2>/dev/null; "${sudo[@]}" rm -rf "$rpmroot"' EXIT
  "${sudo[@]}" rpm --root "$rpmroot" --dbpath "$rpmroot/var/lib/rpm" --initdb
  # Debian's rpm warns that alien is the way to install; the scratch root is not a system.
  "${sudo[@]}" rpm --root "$rpmroot" --dbpath "$rpmroot/var/lib/rpm" -i --nodeps --noscripts "$rpmfile" 2>/dev/null
  rpm -qp --requires "$rpmfile" 2>/dev/null | grep -q '^libwebkit2gtk-4.1.so.0'
  rpm -qp --recommends "$rpmfile" 2>/dev/null | grep -qx gnome-keyring
  # The same files, byte for byte, as the .deb's, but for the app's bundle
  # type: Tauri's bundler writes DEB or RPM over a marker in the binary
  # (`__TAURI_BUNDLE_TYPE_VAR_UNK`, for its updater), three bytes.
  dpkg-deb -x "$deb" "$rpmroot/deb"
  diff -r -x session-manager "$rpmroot/deb/usr" "$rpmroot/usr"
  [ "$(cmp -l "$rpmroot/deb/usr/bin/session-manager" "$rpmroot/usr/bin/session-manager" | wc -l)" -le 3 ]
  "$rpmroot/usr/bin/sessionctl" --version
  with_test_keyring cargo run --locked --quiet -p e2e --bin check-installed -- "$rpmroot/usr/bin/session-manager" first-run
  "${sudo[@]}" rm -rf "$rpmroot"
  say "installed $rpmfile into a scratch root and started it"
fi
