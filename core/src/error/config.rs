//! Config errors: each names the file, the profile, the field, what is wrong
//! and what to do about it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A config file or profile error: names the profile, the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The config file, when the error came from one.
    pub file: Option<PathBuf>,
    /// The profile, when the error is about one.
    pub profile: Option<String>,
    /// The field, when the error is about one.
    pub field: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        if let Some(file) = &self.file {
            write!(f, " in {}", file.display())?;
        }
        if let Some(profile) = &self.profile {
            write!(f, ", profile '{profile}'")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field '{field}'")?;
        }
        write!(f, ": {}. Fix: {}", self.problem, self.fix)
    }
}

impl ConfigError {
    pub(crate) fn new(profile: &str, field: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            file: None,
            profile: Some(profile.to_owned()),
            field: Some(field.to_owned()),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// An error about the whole file or the profile selection.
    pub fn general(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            file: None,
            profile: None,
            field: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(crate) fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_owned());
        self
    }
}
