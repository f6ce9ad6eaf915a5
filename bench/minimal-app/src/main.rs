//! A window with one static page: the baseline the desktop benchmarks compare
//! Session Manager with.
fn main() {
    if let Err(e) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
