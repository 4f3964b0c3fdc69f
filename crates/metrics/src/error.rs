/// Bad input to a metric: a typed error, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("y_true has {y_true} samples but the other input has {other}")]
    LengthMismatch { y_true: usize, other: usize },
    #[error("no samples")]
    Empty,
    #[error("n_classes must be at least 1")]
    NoClasses,
    #[error("label {label} at sample {index} is not below n_classes = {n_classes}")]
    LabelOutOfRange { label: usize, index: usize, n_classes: usize },
    #[error("score {value} at sample {index} is NaN or infinite")]
    NonFiniteScore { value: f64, index: usize },
    #[error("scores have {len} values, expected {n_samples} samples x {n_classes} classes")]
    ScoreShape { len: usize, n_samples: usize, n_classes: usize },
    #[error("ROC AUC is undefined for class {class}: y_true has no {missing} sample of it")]
    UndefinedAuc { class: usize, missing: &'static str },
    #[error("k = {k} must be between 1 and n_classes = {n_classes}")]
    BadK { k: usize, n_classes: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
