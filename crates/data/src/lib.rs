//! cnnlab-data: datasets on disk to in-memory samples (image bytes + label).
//!
//! Every dataset is decoded once into a [`Dataset`]: one contiguous `n x H x W x C`
//! u8 buffer plus labels and class names, so epochs after the first do no decoding.
//! Readers validate everything: a short, wrong-sized or wrong-magic file is an
//! [`Error`] naming the file, never a panic.
//!
//! ```no_run
//! use cnnlab_data::{load, DataConfig};
//! let cfg = DataConfig { dataset: "fashion-mnist".into(), ..Default::default() };
//! let splits = load(&cfg, std::path::Path::new("data")).unwrap();
//! println!("{} train images of {:?}", splits.train.len(), splits.train.shape);
//! ```
//!
//! This crate never depends on `tch`: turning samples into tensors is the train
//! crate's job (see ARCHITECTURE.md).

mod cifar;
mod dataset;
mod error;
pub mod idx;
mod source;

pub use cifar::encode as encode_cifar_batch;
pub use dataset::{Dataset, ImageShape, Splits};
pub use error::{Error, Result};
pub use source::{load, locate, DataConfig, Located, FASHION_MNIST_SYSTEM_DIR};
