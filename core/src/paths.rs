//! Where the app keeps its files (the audit log and refresh locks; never a
//! token).

use std::path::PathBuf;

/// The environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "SESSION_MANAGER_DATA_DIR";
/// The environment variable that overrides the config file.
pub const CONFIG_ENV: &str = "SESSION_MANAGER_CONFIG";

const APP_DIR: &str = "session-manager";

/// The platform's data directory for the app, unless `SESSION_MANAGER_DATA_DIR`
/// says otherwise: `$XDG_DATA_HOME/session-manager` (or
/// `~/.local/share/session-manager`) on Linux, `~/Library/Application
/// Support/session-manager` on macOS, `%APPDATA%\session-manager` on Windows.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    platform_dir("XDG_DATA_HOME", ".local/share")
}

/// The platform's config file for the app, unless `SESSION_MANAGER_CONFIG` says
/// otherwise: `$XDG_CONFIG_HOME/session-manager/config.toml` (or
/// `~/.config/...`) on Linux, and the platform's equivalent elsewhere.
pub fn default_config_file() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(file));
    }
    platform_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("config.toml"))
}

fn platform_dir(xdg_var: &str, home_fallback: &str) -> Option<PathBuf> {
    if cfg!(target_os = "windows") {
        return std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join(APP_DIR));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home.map(|h| h.join("Library/Application Support").join(APP_DIR));
    }
    if let Some(xdg) = std::env::var_os(xdg_var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join(APP_DIR));
    }
    home.map(|h| h.join(home_fallback).join(APP_DIR))
}
