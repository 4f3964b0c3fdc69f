use std::path::PathBuf;

/// Everything training, evaluation and the run folder can fail with. Each variant
/// names what failed: the key, the file, the layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Model(#[from] cnnlab_models::Error),
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    #[error("metrics: {0}")]
    Metrics(#[from] cnnlab_metrics::Error),
    #[error(transparent)]
    Augment(#[from] cnnlab_augment::Error),
    /// Reading or writing the run folder (cnnlab-run).
    #[error(transparent)]
    Run(#[from] cnnlab_run::Error),
    /// The OS error is part of the message, not a `source` (a `{:#}` chain would print
    /// it twice).
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
    /// A file cnnlab-train reads itself (`normalizer.json`) that does not parse.
    #[error("{}: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    /// A `[train]` value that cannot train (its own checks, `TrainConfig::validate`).
    #[error(transparent)]
    Recipe(#[from] cnnlab_run::recipe::Invalid),
    /// A `[train]` value that cannot train; `key` is its dotted path.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// A setting that is valid alone but not with this data or these augmentations.
    #[error("{key}: {message}")]
    Unsupported { key: &'static str, message: String },
    #[error("the {split} split holds no images")]
    EmptySplit { split: &'static str },
    #[error("train.device = \"cuda\" but libtorch sees no CUDA device")]
    NoCuda,
    /// A resume checkpoint that does not fit the run's model or settings.
    #[error("{}: {reason}", path.display())]
    Checkpoint { path: PathBuf, reason: String },
    /// A tensor a resume checkpoint should hold (the caller names the checkpoint).
    #[error("has no `{name}`{hint}")]
    MissingTensor { name: String, hint: &'static str },
    /// Trained weights a command needs that the run folder does not have.
    #[error("{} is missing: did this run finish an epoch?", path.display())]
    MissingWeights { path: PathBuf },
    /// Trained weights that do not load into the run's model.
    #[error("{}: {reason}{hint}", path.display())]
    Weights { path: PathBuf, reason: String, hint: &'static str },
    #[error("loss became {value} at epoch {epoch}, batch {batch}; the last good checkpoint is kept (try a lower lr)")]
    NonFinite { value: f64, epoch: usize, batch: usize },
    #[error("interrupted at epoch {epoch}, batch {batch}; a resumable checkpoint was saved")]
    Interrupted { epoch: usize, batch: usize },
    /// `RunOptions::stop_after_epoch` reached: the run resumes from its checkpoint.
    #[error("paused after epoch {epoch}; a resumable checkpoint was saved")]
    Paused { epoch: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io { path: path.into(), error }
    }

    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        Error::Invalid { key: key.to_string(), message: message.into() }
    }
}
