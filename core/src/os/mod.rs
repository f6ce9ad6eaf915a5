//! What the operating system gives the engine: private files and
//! directories, wall-clock time and waiting for it, the machine waking up,
//! the network coming back, and the process asked to stop. Uses nothing of the engine but [`crate::error`].

pub mod clock;
pub mod netwatch;
pub mod paths;
pub mod resume;
pub mod stop;
