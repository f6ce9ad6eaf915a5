//! Session Manager, the desktop app: the shell (`../shell`, re-exported
//! here) run with this crate's Tauri context. The context is generated here
//! because Tauri's build script (`build.rs`) runs for this crate: it embeds
//! the page (`ui/`) and turns the capabilities into the permissions each
//! command is checked against.

pub use shell::*;

/// Run the desktop app.
pub fn run() {
    shell::run(tauri::generate_context!("../tauri.conf.json"));
}
