//! How a sign-in URL reaches a browser: the opener seam.
//!
//! The desktop app and `sessionctl` open the system browser
//! ([`SystemOpener`]); tests replace it with one that plays the browser.
//! RFC 8252 section 8.12: native apps must use an external user agent (the
//! system browser), never an embedded web view, for the provider's page.

use super::DeviceCode;
use std::sync::Arc;

/// Opens a URL in a browser.
pub trait Opener: Send + Sync {
    /// Hand `url` to a browser. Returns once it is handed over, not when the
    /// person is done.
    fn open(&self, url: &str) -> Result<(), String>;

    /// A device sign-in (RFC 8628) needs the person to enter `code` on
    /// another device: nothing is opened here. The engine's own opener
    /// puts it in the view, which the fronts show; others ignore it.
    fn show_code(&self, _code: &DeviceCode) {}
}

/// The system's default browser (`xdg-open` on Linux, `open` on macOS,
/// `start` on Windows, through the `open` crate).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemOpener;

impl Opener for SystemOpener {
    fn open(&self, url: &str) -> Result<(), String> {
        open::that_detached(url).map_err(|e| format!("cannot start a browser ({e}); open the URL by hand"))
    }
}

/// Opens nothing: the front prints the URL for the person to open
/// (`sessionctl login --no-browser`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoOpener;

impl Opener for NoOpener {
    fn open(&self, _url: &str) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use folder::FolderOpener;

#[cfg(any(test, feature = "test-support"))]
mod folder {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Mutex;
    /// Writes each URL to a new numbered file in a folder, for a test that plays
    /// the browser (the desktop app honours it only in builds made with its
    /// `test-opener` feature).
    #[derive(Debug)]
    pub struct FolderOpener {
        dir: PathBuf,
        count: Mutex<u32>,
    }

    impl FolderOpener {
        pub fn new(dir: impl Into<PathBuf>) -> Self {
            Self {
                dir: dir.into(),
                count: Mutex::new(0),
            }
        }
    }

    impl Opener for FolderOpener {
        fn open(&self, url: &str) -> Result<(), String> {
            let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
            *count += 1;
            std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
            // Write, then rename: a reader never sees half a URL.
            let tmp = self.dir.join(format!(".{count}.tmp"));
            std::fs::write(&tmp, url).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, self.dir.join(format!("{count:04}.url"))).map_err(|e| e.to_string())
        }
    }
}

/// An opener that also runs a callback with each URL (fronts use it to show
/// or print the URL besides opening it).
pub struct Tee {
    inner: Arc<dyn Opener>,
    seen: Box<dyn Fn(&str) + Send + Sync>,
}

impl Tee {
    pub fn new(inner: Arc<dyn Opener>, seen: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            inner,
            seen: Box::new(seen),
        }
    }
}

impl Opener for Tee {
    fn open(&self, url: &str) -> Result<(), String> {
        (self.seen)(url);
        self.inner.open(url)
    }

    fn show_code(&self, code: &DeviceCode) {
        self.inner.show_code(code)
    }
}
