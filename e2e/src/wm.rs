//! A real window manager on the test display: openbox, and wmctrl to ask
//! it which windows are mapped and to close one as its title bar's close
//! button does (a `_NET_CLOSE_WINDOW` request, which openbox turns into the
//! `WM_DELETE_WINDOW` message GTK reports as a close request). Without a
//! window manager nobody answers that request, so a test of what closing
//! the window does needs one.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// openbox on `$DISPLAY`, stopped when dropped.
pub struct WindowManager {
    child: Child,
}

impl WindowManager {
    /// Start openbox and wait until it manages the display.
    pub fn start() -> WindowManager {
        let mut child = Command::new("openbox")
            .arg("--sm-disable")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openbox starts (apt-get install openbox wmctrl; scripts/test.sh installs them)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !wmctrl(&["-m"]).is_some_and(|out| out.contains("Openbox")) {
            // Gone before it took the display: say what it said (an X
            // server that was resetting refuses it: docs/next-engineer.md).
            if let Ok(Some(status)) = child.try_wait() {
                let mut said = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut said);
                }
                panic!("openbox ended ({status}) before it took the display: {said}");
            }
            assert!(
                Instant::now() < deadline,
                "openbox did not take the display within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        WindowManager { child }
    }

    /// The titles of the windows it manages (mapped, not hidden).
    pub fn titles(&self) -> Vec<String> {
        wmctrl(&["-l"])
            .unwrap_or_default()
            .lines()
            // "0x01200003  0 host Title words": the title is the rest.
            .map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// Whether the window whose title starts with `title` is minimized
    /// (iconified: still managed, `_NET_WM_STATE_HIDDEN`, as xprop reads it).
    pub fn minimized(&self, title: &str) -> bool {
        let Some(list) = wmctrl(&["-l"]) else { return false };
        list.lines()
            .filter(|l| {
                l.split_whitespace()
                    .skip(3)
                    .collect::<Vec<_>>()
                    .join(" ")
                    .starts_with(title)
            })
            .filter_map(|l| l.split_whitespace().next())
            .any(|id| {
                Command::new("xprop")
                    .args(["-id", id, "_NET_WM_STATE"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("_NET_WM_STATE_HIDDEN"))
            })
    }

    /// Ask the window whose title contains `title` to close, as its close
    /// button would.
    pub fn close(&self, title: &str) {
        assert!(
            wmctrl(&["-c", title]).is_some(),
            "wmctrl found no window titled '{title}': {:?}",
            self.titles()
        );
    }
}

impl Drop for WindowManager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// wmctrl's output when it succeeds.
fn wmctrl(args: &[&str]) -> Option<String> {
    let out = Command::new("wmctrl")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("wmctrl runs (apt-get install wmctrl)");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
