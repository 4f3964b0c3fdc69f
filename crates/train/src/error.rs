use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] cnnlab_models::Error),
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    #[error("metrics: {0}")]
    Metrics(#[from] cnnlab_metrics::Error),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("loss became {value} at epoch {epoch}, batch {batch}; the last good checkpoint is kept (try a lower lr)")]
    NonFinite { value: f64, epoch: usize, batch: usize },
    #[error("{0}")]
    Config(String),
    #[error("interrupted at epoch {epoch}, batch {batch}; a resumable checkpoint was saved")]
    Interrupted { epoch: usize, batch: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
