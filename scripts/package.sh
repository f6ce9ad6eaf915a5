#!/usr/bin/env bash
# Build installable packages of Session Manager with the Tauri bundler:
# a .deb and an .rpm holding the desktop app (with its desktop entry and
# icons) and sessionctl (with its man page and bash, zsh and fish
# completions). The app is built without its built-in Playground (the
# `playground` feature): with nothing configured it opens on a first-run
# screen. The Playground is a package of its own, for QA and demos:
# session-manager-playground_VERSION_ARCH.deb (built here with dpkg-deb),
# which the first-run screen's "Try the demo" starts.
#   bash scripts/package.sh            release build: target/release/bundle/{deb,rpm}/
#   bash scripts/package.sh --debug    debug build (what the test command installs)
# Installs what is missing: the build's Debian packages, Node (to write the
# bundler's config), and the Tauri CLI (see ensure_tauri_cli in common.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

profile=release
cargo_flag=(--release)
tauri_flag=()
if [ "${1:-}" = --debug ]; then
  profile=debug
  cargo_flag=()
  tauri_flag=(--debug)
fi

ensure_packages "${BASE_PACKAGES[@]}" "${APP_PACKAGES[@]}" "${PACKAGE_PACKAGES[@]}"
ensure_node
ensure_rust
ensure_tauri_cli

# CARGO_TARGET_DIR is honoured (a worktree sharing another's build).
out="$(realpath -m "${CARGO_TARGET_DIR:-target}")/$profile"
share="$out/package-share"
say "building sessionctl ($profile), its man page and completions"
cargo build --locked --quiet "${cargo_flag[@]}" -p sessionctl
mkdir -p "$share"
"$out/sessionctl" man > "$share/sessionctl.1"
gzip -9nf "$share/sessionctl.1"
"$out/sessionctl" completions bash > "$share/sessionctl.bash"
"$out/sessionctl" completions zsh > "$share/_sessionctl"
"$out/sessionctl" completions fish > "$share/sessionctl.fish"
# What Debian's policy (and lintian) asks of every package: the copyright
# file and a changelog; and AppStream's description for software centres.
gzip -9nc packaging/changelog > "$share/changelog.gz"
appstreamcli validate --no-net --pedantic packaging/dev.sessionmanager.SessionManager.metainfo.xml >/dev/null

# tauri-cli takes the folder holding tauri.conf.json as the app's crate,
# and ours is at the repository root, beside the workspace manifest (the
# shell reads it from there). The bundler gets its own copy in src-tauri/,
# written here with the packaging settings and paths relative to src-tauri/,
# and removed afterwards.
generated=src-tauri/tauri.conf.json
trap 'rm -f "$generated"' EXIT
OUT="$out" node - "$generated" <<'JS'
const fs = require('fs');
const config = JSON.parse(fs.readFileSync('tauri.conf.json', 'utf8'));
const out = process.env.OUT;
const share = `${out}/package-share`;
const files = {
  '/usr/bin/sessionctl': `${out}/sessionctl`,
  '/usr/share/man/man1/sessionctl.1.gz': `${share}/sessionctl.1.gz`,
  '/usr/share/bash-completion/completions/sessionctl': `${share}/sessionctl.bash`,
  '/usr/share/zsh/vendor-completions/_sessionctl': `${share}/_sessionctl`,
  '/usr/share/fish/vendor_completions.d/sessionctl.fish': `${share}/sessionctl.fish`,
  '/usr/share/doc/session-manager/copyright': '../packaging/copyright',
  '/usr/share/doc/session-manager/changelog.gz': `${share}/changelog.gz`,
  '/usr/share/metainfo/dev.sessionmanager.SessionManager.metainfo.xml': '../packaging/dev.sessionmanager.SessionManager.metainfo.xml',
};
config.build.frontendDist = `../${config.build.frontendDist}`;
config.bundle = {
  ...config.bundle,
  active: true,
  targets: ['deb', 'rpm'],
  icon: config.bundle.icon.map((p) => `../${p}`),
  category: 'Utility',
  shortDescription: 'Sign in to an identity provider and keep the session fresh',
  // Lines of at most 80 characters: Debian's control file shows them as they are.
  longDescription: [
    'Signs in to an identity provider (FinHub, OpenID Connect), keeps the',
    'session alive for as long as the provider allows, keeps secrets in the',
    'OS keychain and talks only over certificate-pinned TLS. Includes',
    'sessionctl, its command line.',
  ].join('\n'),
  linux: {
    deb: {
      section: 'utils',
      // WebKitGTK and GTK come from the bundler; the tray needs libayatana.
      depends: ['libayatana-appindicator3-1', 'libc6'],
      // The keychain: without a Secret Service sessions live in memory only.
      recommends: ['gnome-keyring | keepassxc', 'xdg-utils'],
      files,
    },
    rpm: {
      depends: ['libayatana-appindicator-gtk3'],
      recommends: ['gnome-keyring', 'xdg-utils'],
      files,
    },
  },
};
fs.writeFileSync(process.argv[2], JSON.stringify(config, null, 2));
JS

say "bundling the app ($profile, without the built-in Playground)"
(cd src-tauri && "$TAURI_CLI" build "${tauri_flag[@]}" --ci --bundles deb,rpm -- --locked --no-default-features)
# Conventional file names, without the product name's space:
# session-manager_VERSION_ARCH.deb and session-manager-VERSION-1.ARCH.rpm.
for f in "$out"/bundle/deb/*.deb "$out"/bundle/rpm/*.rpm; do
  case "$f" in *' '*) mv -f "$f" "$(dirname "$f")/$(basename "$f" | sed 's/^Session Manager/session-manager/')" ;; esac
done

# A reverse-DNS desktop file id and icon name (the AppStream id): Tauri's
# bundler names them after the product ("Session Manager.desktop") and the
# binary (session-manager.png), with no setting to change either, so both
# packages are unpacked, renamed and packed again here.
app_id=dev.sessionmanager.SessionManager
rename_in_tree() {
  local root=$1 icon
  mv "$root/usr/share/applications/Session Manager.desktop" "$root/usr/share/applications/$app_id.desktop"
  sed -i "s/^Icon=.*/Icon=$app_id/" "$root/usr/share/applications/$app_id.desktop"
  for icon in "$root"/usr/share/icons/hicolor/*/apps/session-manager.png; do
    mv "$icon" "$(dirname "$icon")/$app_id.png"
  done
}
deb=$(ls -t "$out"/bundle/deb/session-manager_*.deb | head -n 1)
tree=$(mktemp -d)
dpkg-deb -R "$deb" "$tree"
rename_in_tree "$tree"
(cd "$tree" && find usr -type f -print0 | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
# The metainfo, the desktop file it launches and the icon, together.
appstreamcli validate-tree --no-net "$tree" >&2
dpkg-deb --root-owner-group -Zgzip -b "$tree" "$deb" >/dev/null
rm -rf "$tree"
# The .rpm: its payload renamed the same way and built again with rpmbuild
# from a spec that carries over the bundler's header (name, version,
# dependencies, description), changing nothing else (no strip, no
# dependency scan).
ensure_packages rpm cpio
rpmfile=$(ls -t "$out"/bundle/rpm/session-manager-*.rpm | head -n 1)
work=$(mktemp -d)
mkdir -p "$work/root" "$work/top"
# Debian's rpm2cpio writes the whole payload of the bundler's .rpm and then
# exits 1; what it wrote is checked instead (rpm -i installs the same file
# without a complaint in the test command).
(cd "$work/root" && { rpm2cpio "$rpmfile" || true; } | cpio -idm --quiet)
[ -x "$work/root/usr/bin/session-manager" ] && [ -x "$work/root/usr/bin/sessionctl" ]
rename_in_tree "$work/root"
q() { rpm -qp --qf "$1" "$rpmfile"; }
{
  echo "Name: $(q '%{NAME}')"
  echo "Version: $(q '%{VERSION}')"
  echo "Release: $(q '%{RELEASE}')"
  echo "Summary: $(q '%{SUMMARY}')"
  echo "License: $(q '%{LICENSE}')"
  echo "AutoReqProv: no"
  rpm -qp --requires "$rpmfile" | grep -v '^rpmlib(' | sed 's/^/Requires: /'
  rpm -qp --recommends "$rpmfile" | sed 's/^/Recommends: /'
  echo '%global debug_package %{nil}'
  echo '%global __os_install_post %{nil}'
  echo '%global _build_id_links none'
  echo '%description'
  q '%{DESCRIPTION}'
  echo
  echo '%install'
  echo "cp -a '$work/root/.' %{buildroot}/"
  echo '%files'
  echo '%defattr(-,root,root,-)'
  (cd "$work/root" && find . -type f -o -type l | sed 's|^\.||' | sort | sed 's/.*/"&"/')
} > "$work/session-manager.spec"
rpmbuild -bb --quiet --define "_topdir $work/top" --target "$(q '%{ARCH}')" "$work/session-manager.spec" >/dev/null
mv -f "$work"/top/RPMS/*/*.rpm "$rpmfile"
rm -rf "$work"
say "the Playground's package ($profile)"
cargo build --locked --quiet "${cargo_flag[@]}" -p playground
version=$(dpkg-deb -f "$out"/bundle/deb/session-manager_*.deb Version)
arch=$(dpkg --print-architecture)
pgroot="$out/playground-package"
rm -rf "$pgroot"
install -D -m 0755 "$out/playground" "$pgroot/usr/bin/session-manager-playground"
install -D -m 0644 packaging/playground.desktop "$pgroot/usr/share/applications/dev.sessionmanager.Playground.desktop"
install -D -m 0644 icons/128x128.png "$pgroot/usr/share/icons/hicolor/128x128/apps/dev.sessionmanager.Playground.png"
install -D -m 0644 packaging/copyright "$pgroot/usr/share/doc/session-manager-playground/copyright"
sed 's/^session-manager (/session-manager-playground (/' packaging/changelog | gzip -9n > "$share/playground-changelog.gz"
install -D -m 0644 "$share/playground-changelog.gz" "$pgroot/usr/share/doc/session-manager-playground/changelog.gz"
[ "$profile" = release ] && strip "$pgroot/usr/bin/session-manager-playground"
mkdir -p "$pgroot/DEBIAN"
cat > "$pgroot/DEBIAN/control" <<CONTROL
Package: session-manager-playground
Version: $version
Architecture: $arch
Maintainer: Session Manager developers <maintainers@session-manager.invalid>
Installed-Size: $(du -sk "$pgroot/usr" | cut -f1)
Depends: libc6
Section: devel
Priority: optional
Description: demo identity provider for Session Manager (QA)
 A local identity provider for QA and demos: the FinHub session API and
 OpenID Connect over real TLS on 127.0.0.1, with demo users, switches for
 how real providers behave, and an admin API for fault injection. Session
 Manager's first-run screen starts it with "Try the demo".
CONTROL
mkdir -p "$out/bundle/playground"
pgdeb="$out/bundle/playground/session-manager-playground_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz -b "$pgroot" "$pgdeb" >/dev/null
for d in "$deb" "$pgdeb"; do
  say "lintian $d"
  # Errors fail the build; the warnings kept are listed, with why, in
  # docs/architecture.md ("Packages"). A debug build is not stripped: that
  # error is the release build's to hold.
  suppress=()
  [ "$profile" = debug ] && suppress=(--suppress-tags unstripped-binary-or-object)
  lintian --fail-on error "${suppress[@]}" "$d" >&2
done
say "packages:"
ls -l "$out"/bundle/deb/*.deb "$out"/bundle/rpm/*.rpm "$pgdeb" >&2
