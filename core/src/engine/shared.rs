//! Small files beside the cross-process lock that every process of the
//! user reads, for what the keychain cannot say (it may be locked, or gone):
//!
//! - **Tombstones** (`STEM.ended-ID`): session ID was signed out. Written
//!   before the keychain is cleared, so a process that renews the session
//!   at that moment finds it after its own write and undoes that write;
//!   honoured by every later start.
//! - **The journal** (`STEM.journal`): which refresh token of which session
//!   is the live one, as a SHA-256 hash, written under the lock after every
//!   redemption. A process whose token differs holds a spent one and must
//!   not present it, even when the keychain cannot be read to find the new
//!   one (the provider would see a reuse and revoke the family).
//! - **Last activity** (`STEM.activity`): the session and the last time the
//!   person used it in any process (to 30 s), so the idle timeout counts
//!   `sessionctl call` in the app and survives a restart.
//!
//! All are 0600 in the 0700 shared directory; none holds a secret.

use super::Engine;
use crate::os::clock::Timestamp;
use crate::token::RefreshToken;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use uuid::Uuid;

/// How coarse the shared last activity is: written at most this often.
pub(super) const ACTIVITY_GRAIN: chrono::Duration = chrono::Duration::seconds(30);

fn hash(token: &RefreshToken) -> String {
    Sha256::digest(token.expose().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Engine {
    fn shared_file(&self, suffix: &str) -> PathBuf {
        self.inner.shared_dir.join(format!("{}.{suffix}", self.inner.stem))
    }

    /// Write `text` to the shared file `suffix`: a temporary file renamed
    /// over it, so a reader sees the old or the new content, never half.
    fn write_shared(&self, suffix: &str, text: &str) -> std::io::Result<()> {
        use std::io::Write;
        crate::os::paths::private_dir(&self.inner.shared_dir)?;
        let path = self.shared_file(suffix);
        let tmp = self.shared_file(&format!("{suffix}.tmp-{}", std::process::id()));
        let mut file = crate::os::paths::open_private(
            &tmp,
            std::fs::OpenOptions::new().create(true).write(true).truncate(true),
        )?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// A shared file's "ID VALUE" line, if it names session `id`.
    fn read_shared(&self, suffix: &str, id: Uuid) -> Option<String> {
        let text = std::fs::read_to_string(self.shared_file(suffix)).ok()?;
        let (who, value) = text.trim().split_once(' ')?;
        (who == id.to_string()).then(|| value.to_owned())
    }

    fn tombstone_path(&self, id: Uuid) -> PathBuf {
        self.shared_file(&format!("ended-{id}"))
    }

    /// Remember that session `id` was signed out, for processes that still
    /// hold it and for every later start.
    pub(super) fn write_tombstone(&self, id: Uuid) {
        let path = self.tombstone_path(id);
        let _ = crate::os::paths::private_dir(&self.inner.shared_dir).and_then(|()| {
            crate::os::paths::open_private(
                &path,
                std::fs::OpenOptions::new().create(true).write(true).truncate(true),
            )
            .map(|_| ())
        });
    }

    /// Whether session `id` was signed out (here or in another process).
    pub(super) fn has_tombstone(&self, id: Uuid) -> bool {
        self.tombstone_path(id).exists()
    }

    pub(super) fn remove_tombstone(&self, id: Uuid) {
        let _ = std::fs::remove_file(self.tombstone_path(id));
    }

    /// After redeeming a refresh token of session `id` (under the lock):
    /// `live` is the only valid one now. A journal that cannot be written
    /// is removed, so that a stale one blocks nobody.
    pub(super) fn journal_redemption(&self, id: Uuid, live: &RefreshToken) {
        if self.write_shared("journal", &format!("{id} {}\n", hash(live))).is_err() {
            let _ = std::fs::remove_file(self.shared_file("journal"));
        }
    }

    /// Whether `token` of session `id` was already redeemed by some process
    /// (the journal names another live token for that session).
    pub(super) fn journal_says_spent(&self, id: Uuid, token: &RefreshToken) -> bool {
        self.read_shared("journal", id).is_some_and(|live| live != hash(token))
    }

    /// Note the person's activity on session `id` for every process, at most
    /// once per [`ACTIVITY_GRAIN`] (`last_written`); best effort.
    pub(super) fn share_activity(&self, id: Uuid, at: Timestamp) {
        let _ = self.write_shared("activity", &format!("{id} {}\n", at.timestamp()));
    }

    /// The last activity on session `id` that any process noted.
    pub(super) fn shared_activity(&self, id: Uuid) -> Option<Timestamp> {
        let secs = self.read_shared("activity", id)?.parse::<i64>().ok()?;
        crate::os::clock::from_unix_seconds(secs)
    }
}
