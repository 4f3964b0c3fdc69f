use std::path::PathBuf;

/// What reading, writing or locking a run folder can fail with; each variant names
/// the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS error is part of the message, not a `source` (a `{:#}` chain would print
    /// it twice).
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{}: {error}", path.display())]
    Csv { path: PathBuf, error: csv::Error },
    /// A write failed (full disk, read-only folder); the temporary file is gone and
    /// the earlier version of the file, if any, is intact.
    #[error("writing {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    /// A file of a run folder that does not parse (or a path that is no run folder).
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// A predictions CSV that does not read: the message names the file and line.
    #[error("{0}")]
    Predictions(String),
    /// Another live process trains in the folder.
    #[error("{} is in use by process {pid} on {host} (its .lock); wait for it or stop it", dir.display())]
    Locked { dir: PathBuf, pid: u32, host: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { path: path.into(), error }
    }
}
