/// Errors building a network from its layer specs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A layer cannot work on the shape it receives; `index` counts from 0 in the
    /// config's `layers` list.
    #[error("model.layers[{index}] ({kind}): {reason}")]
    Layer { index: usize, kind: &'static str, reason: String },
    #[error("model: {0}")]
    Invalid(String),
    /// Pretrained weights that do not fit: a tensor missing, extra or of another
    /// shape, named.
    #[error("{file}: {message}")]
    Weights { file: String, message: String },
    /// A libtorch call outside tch failed (`ffi`).
    #[error("libtorch: {0}")]
    Torch(String),
    #[error(transparent)]
    Tch(#[from] tch::TchError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
