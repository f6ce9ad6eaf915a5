//! "Start when I log in": off by default; on Linux an XDG autostart entry
//! (`$XDG_CONFIG_HOME/autostart/<app id>.desktop`, which desktop sessions
//! start at login) that starts the app with `--hidden`, in the tray.
//! macOS and Windows are not built here: there the setting says it is not
//! available yet rather than pretending.

use std::path::{Path, PathBuf};

/// The desktop file id the app's packages use.
const APP_ID: &str = "dev.sessionmanager.SessionManager";

/// The autostart entry's path, from the environment (`XDG_CONFIG_HOME`,
/// else `HOME/.config`).
pub fn entry_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("autostart").join(format!("{APP_ID}.desktop")))
}

/// Whether the app starts at login: the entry exists and is not switched
/// off (`Hidden=true`, or GNOME's `X-GNOME-Autostart-enabled=false`, which
/// a session's settings may write into it).
pub fn enabled(entry: &Path) -> bool {
    match std::fs::read_to_string(entry) {
        Ok(text) => !text.lines().map(str::trim).any(|l| {
            l.eq_ignore_ascii_case("Hidden=true") || l.eq_ignore_ascii_case("X-GNOME-Autostart-enabled=false")
        }),
        Err(_) => false,
    }
}

/// The entry that starts `exe` hidden in the tray.
pub fn entry_text(exe: &Path) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=Session Manager\n\
         Comment=Keeps your sign-in sessions alive, from the tray\n\
         Exec={} --hidden\nIcon={APP_ID}\nTerminal=false\nNoDisplay=true\n\
         X-GNOME-Autostart-enabled=true\n",
        exec_quote(&exe.to_string_lossy())
    )
}

/// A program path as the Desktop Entry specification's Exec key wants it:
/// bare when it is plain, else in double quotes with `"`, `` ` ``, `$` and
/// `\` escaped (and `%` doubled: field codes).
fn exec_quote(path: &str) -> String {
    let path = path.replace('%', "%%");
    if path.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c)) {
        return path;
    }
    let mut out = String::from("\"");
    for c in path.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Switch starting at login on or off for `exe`; returns whether it is on.
pub fn set(entry: &Path, on: bool, exe: &Path) -> Result<bool, String> {
    if !cfg!(target_os = "linux") {
        return Err("starting at login is not available on this system yet.".into());
    }
    if on {
        let dir = entry.parent().ok_or("the autostart folder has no parent")?;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Written whole, then renamed: a session starting meanwhile never
        // reads half an entry.
        let tmp = entry.with_extension("desktop.tmp");
        std::fs::write(&tmp, entry_text(exe)).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, entry).map_err(|e| format!("cannot write {}: {e}", entry.display()))?;
    } else {
        match std::fs::remove_file(entry) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", entry.display())),
        }
    }
    Ok(enabled(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_starts_the_app_hidden_and_off_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("autostart").join("x.desktop");
        assert!(!enabled(&entry), "off by default");
        assert_eq!(set(&entry, true, Path::new("/usr/bin/session-manager")), Ok(true));
        let text = std::fs::read_to_string(&entry).unwrap();
        assert!(text.contains("\nExec=/usr/bin/session-manager --hidden\n"), "{text}");
        assert!(text.starts_with("[Desktop Entry]\n"), "{text}");
        assert_eq!(set(&entry, false, Path::new("/usr/bin/session-manager")), Ok(false));
        assert!(!entry.exists());
        assert_eq!(set(&entry, false, Path::new("/x")), Ok(false), "off twice is fine");
    }

    #[test]
    fn a_session_that_switched_the_entry_off_counts_as_off() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("x.desktop");
        std::fs::write(
            &entry,
            entry_text(Path::new("/a")).replace("enabled=true", "enabled=false"),
        )
        .unwrap();
        assert!(!enabled(&entry));
    }

    #[test]
    fn an_unusual_program_path_is_quoted_as_the_specification_says() {
        assert_eq!(exec_quote("/opt/Session Manager/bin"), "\"/opt/Session Manager/bin\"");
        assert_eq!(exec_quote("/a/$HOME\"x"), "\"/a/\\$HOME\\\"x\"");
        assert_eq!(exec_quote("/a/100%"), "\"/a/100%%\"");
    }
}
