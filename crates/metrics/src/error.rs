/// Bad input to a metric: typed, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("y_true has {y_true} samples but the other input has {other}")]
    LengthMismatch { y_true: usize, other: usize },
    #[error("no samples")]
    Empty,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
