# Shared by scripts/run.sh and scripts/test.sh. Source it; do not run it.

# Debian/Ubuntu packages the build and the tests need:
# - build-essential, pkg-config, libdbus-1-dev: build the keyring crate's
#   Secret Service backend (it talks D-Bus through libdbus);
# - dbus-daemon, dbus-x11: a private session bus (dbus-run-session);
# - gnome-keyring: the Secret Service the tests store sessions in;
# - libsecret-tools: `secret-tool`, to look into the keychain by hand;
# - iproute2: `ip`, with which tests/netns.rs takes a link down and up.
BASE_PACKAGES=(build-essential pkg-config libdbus-1-dev dbus-daemon dbus-x11 gnome-keyring libsecret-tools ca-certificates iproute2)
# The desktop app (Tauri v2 on WebKitGTK, tray icon through libayatana).
# xdg-utils: xdg-open, how OpenID Connect profiles reach the system browser.
APP_PACKAGES=(libwebkit2gtk-4.1-dev librsvg2-dev libxdo-dev libayatana-appindicator3-dev xdg-utils)
# End-to-end tests: WebKitWebDriver and a virtual X server; openbox and
# wmctrl, a real window manager for what closing the window does (x11-utils:
# xprop, to read whether it is minimized); xclip, to
# read the clipboard back.
E2E_PACKAGES=(webkit2gtk-driver xvfb openbox wmctrl x11-utils xclip)
# The package step: Debian's package checker and AppStream's validator.
PACKAGE_PACKAGES=(lintian appstream)
# The UI's pure helpers are tested with Node's built-in test runner.
UI_TEST_PACKAGES=(nodejs)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Install the Debian packages among "$@" that are missing (as root, or with sudo).
ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    say "missing packages: ${missing[*]}; this is not a Debian/Ubuntu system, install them yourself"
    return 1
  fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  say "installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Node for the UI's unit tests: any Node with `node --test` (18 or newer);
# Debian's package when none is on PATH.
ensure_node() {
  command -v node >/dev/null && node --test --help >/dev/null 2>&1 && return 0
  ensure_packages "${UI_TEST_PACKAGES[@]}"
}

# Make sure a Rust toolchain is there (it cannot come from apt: Debian's is too old).
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  if ! command -v cargo >/dev/null; then
    say "cargo is missing: install Rust 1.89 or newer with rustup (https://rustup.rs), then run this again"
    exit 1
  fi
}

# tauri-driver, the WebDriver front for Tauri apps (from crates.io).
ensure_tauri_driver() {
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v tauri-driver >/dev/null && return 0
  say "installing tauri-driver"
  cargo install tauri-driver --locked --quiet
}

# The Tauri CLI (the bundler's front), for scripts/package.sh: the npm
# package @tauri-apps/cli, which carries the same CLI prebuilt, installed
# into target/tools/ at a pinned version. `cargo install tauri-cli` builds
# it from source instead: 17 minutes on this project's 2-core machines,
# which would put a cold CI run over its 30-minute budget. Sets TAURI_CLI
# to the command to run.
TAURI_CLI_VERSION=2.12.6
ensure_tauri_cli() {
  local dir=target/tools/tauri-cli
  TAURI_CLI="$PWD/$dir/node_modules/.bin/tauri"
  if [ -x "$TAURI_CLI" ] && [ "$("$TAURI_CLI" --version 2>/dev/null)" = "tauri-cli $TAURI_CLI_VERSION" ]; then
    return 0
  fi
  command -v npm >/dev/null || ensure_packages npm
  say "installing the Tauri CLI $TAURI_CLI_VERSION (npm, into $dir)"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "@tauri-apps/cli@$TAURI_CLI_VERSION" >/dev/null
  "$TAURI_CLI" --version >/dev/null
}

# axe-core, the accessibility checker the end-to-end scenarios inject into
# the window (e2e::axe): npm, pinned, into target/tools/axe-core.
AXE_CORE_VERSION=4.14.1
ensure_axe() {
  local dir=target/tools/axe-core
  local js="$dir/node_modules/axe-core/axe.min.js"
  if [ -f "$js" ] && grep -q "axe v$AXE_CORE_VERSION" "$js"; then
    return 0
  fi
  command -v npm >/dev/null || ensure_packages npm
  say "installing axe-core $AXE_CORE_VERSION (npm, into $dir)"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "axe-core@$AXE_CORE_VERSION" >/dev/null
  grep -q "axe v$AXE_CORE_VERSION" "$js"
}

# Start a virtual X server on a free display unless DISPLAY is set; sets
# DISPLAY and XVFB_PID.
ensure_display() {
  [ -n "${DISPLAY:-}" ] && return 0
  local n
  # A display is taken while the X server named in its lock file runs. A
  # server that was killed (SIGKILL, a timeout) leaves its lock and socket
  # behind: only a live owner counts (else every killed run used up a
  # number for good), and a dead one's files are removed first, so the wait
  # below sees the new server's socket, not the old one's.
  local owner
  for n in $(seq 99 140); do
    owner=$(tr -d ' ' 2>/dev/null < "/tmp/.X$n-lock" || true)
    [ -n "$owner" ] && [ -d "/proc/$owner" ] || break
  done
  rm -f "/tmp/.X$n-lock" "/tmp/.X11-unix/X$n" 2>/dev/null || true
  Xvfb ":$n" -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.05; done
  export DISPLAY=":$n"
  say "started Xvfb on $DISPLAY"
}

# Run "$@" with a Secret Service: a private D-Bus session with a fresh,
# unlocked gnome-keyring whose files live in a throwaway folder, so nothing
# touches the user's own keychain and every run starts empty.
with_test_keyring() {
  local tmp rc=0
  tmp=$(mktemp -d)
  mkdir -m 700 "$tmp/run"
  # NO_AT_BRIDGE: no accessibility bus on this private bus, so GTK should not look for one.
  XDG_DATA_HOME="$tmp/data" XDG_RUNTIME_DIR="$tmp/run" NO_AT_BRIDGE=1 \
    dbus-run-session --config-file="$(dirname "${BASH_SOURCE[0]}")/session-bus.conf" -- bash -c '
    # gnome-keyring creates and unlocks a "login" keyring with this password;
    # it becomes the default collection the vault writes to.
    printf %s throwaway | gnome-keyring-daemon --unlock --components=secrets >/dev/null || exit 1
    # Whether the keychain is served. After the run too: gnome-keyring-daemon
    # aborts on a race of its own when clients come and go quickly
    # (docs/next-engineer.md), and every keychain test after that fails;
    # this says why. (Asked of the bus: a dead daemon can linger as a zombie.)
    served() {
      dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q "boolean true"
    }
    # The daemon is back from --unlock before it has taken its name on the
    # bus: a test that came first would find no keychain.
    for _ in $(seq 200); do served && break; sleep 0.05; done
    served || { echo "gnome-keyring-daemon did not take org.freedesktop.secrets on the test bus" >&2; exit 1; }
    rc=0
    "$@" || rc=$?
    if ! served; then
      printf "\033[1m==> gnome-keyring-daemon died during this run: the keychain tests after that read memory_only. Its known abort (a GLib assertion in OpenSession; dmesg: trap int3 in libglib) is explained in docs/next-engineer.md\033[0m\n" >&2
      [ "$rc" -ne 0 ] || rc=1
    fi
    exit $rc' _ "$@" || rc=$?
  # Anything that mounted itself under the runtime dir (a document portal
  # started elsewhere) must not make the cleanup fail the run.
  if mountpoint -q "$tmp/run/doc" 2>/dev/null; then fusermount -u "$tmp/run/doc" 2>/dev/null || true; fi
  rm -rf "$tmp" 2>/dev/null || true
  return $rc
}
