use std::path::PathBuf;

/// Everything that can go wrong turning files on disk into samples. Each variant
/// names the file or the key at fault, on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS error is part of the message, not a `source` (a `{:#}` chain would print
    /// it twice).
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("dataset `{name}` not found (looked in {tried}); {hint}")]
    NotFound { name: String, tried: String, hint: String },
    #[error("unknown dataset `{0}` (known: fashion-mnist, mnist, cifar10, simpsons, pets, shapes, image-folder)")]
    UnknownDataset(String),
    #[error("{0}")]
    Invalid(String),
    /// A `[data]` value that cannot work; `key` is its name in the section.
    #[error("data.{key}: {message}")]
    InvalidKey { key: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Format { path: path.into(), reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { path: path.into(), error }
    }
}
