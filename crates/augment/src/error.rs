//! The one error type of this crate.

/// A pipeline that cannot be built or an image that cannot be augmented: a typed
/// error, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An op's parameter outside its range, e.g. brightness `min > max`.
    #[error("op {index} ({op}): {field}: {message}")]
    InvalidOp {
        /// The op's position in the pipeline.
        index: usize,
        /// The op's name (`"brightness"`).
        op: &'static str,
        /// The parameter (`"min"`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A free function's argument outside its range (`gaussian_blur` with an even
    /// kernel, `hue` beyond half a turn, ...), as torchvision raises for it.
    #[error("{function}: {argument}: {message}")]
    InvalidArgument {
        /// The function (`"gaussian_blur"`).
        function: &'static str,
        /// The argument (`"kernel"`).
        argument: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// An image of pixels without a value (0 channels).
    #[error("a {height}x{width} image needs at least one channel")]
    NoChannels {
        /// The image's height.
        height: usize,
        /// The image's width.
        width: usize,
    },
    /// [`Pipeline::apply`](crate::Pipeline::apply) (in place) on a pipeline whose
    /// size-changing ops give another shape: use `Pipeline::transform`.
    #[error("the pipeline turns a {input:?} image into {}: use Pipeline::transform", match output { Some(s) => format!("{s:?}"), None => "a size drawn at random".to_owned() })]
    ChangesShape {
        /// The shape given.
        input: crate::Shape,
        /// The shape the pipeline makes of it, `None` when it varies.
        output: Option<crate::Shape>,
    },
    /// An image buffer whose length does not match its shape.
    #[error("image buffer holds {len} bytes, but {height}x{width}x{channels} needs {expected}")]
    BufferSize {
        /// Bytes given.
        len: usize,
        /// Bytes the shape needs.
        expected: usize,
        /// The shape's height.
        height: usize,
        /// The shape's width.
        width: usize,
        /// The shape's channels.
        channels: usize,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
