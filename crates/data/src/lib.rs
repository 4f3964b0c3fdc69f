//! cnnlab-data: datasets on disk to in-memory samples (image bytes + label).
//!
//! Every dataset is decoded once into a [`Dataset`]: one contiguous `n x H x W x C`
//! u8 buffer (exactly `n * H * W * C` bytes) plus labels and class names, so epochs
//! after the first do no decoding. Image files are decoded and resized in parallel
//! (rayon) with a progress bar.
//!
//! Layouts: MNIST/Fashion-MNIST IDX files, CIFAR-10 binary batches (or the JPEG copy,
//! `cifar10-jpg/{train,test}/<class>/`), image folders (`root/<class>/*.jpg`, split
//! by fraction, or `root/{train,test}/<class>/`), the Simpsons data and Oxford-IIIT
//! Pet (`images/` + `annotations/{trainval,test}.txt`). Readers validate everything:
//! a short, wrong-sized or wrong-magic file is an [`Error`] naming the file; a
//! zero-byte, truncated or non-image file inside a folder is skipped and listed in
//! [`LoadReport`]. Nothing panics on bad input.
//!
//! ```no_run
//! use cnnlab_data::{load, DataConfig};
//! let cfg = DataConfig { dataset: "fashion-mnist".into(), ..Default::default() };
//! let splits = load(&cfg, std::path::Path::new("data")).unwrap();
//! println!("{} train images of {:?}", splits.train.len(), splits.train.shape);
//! ```
//!
//! This crate never depends on `tch`: turning samples into tensors is the train
//! crate's job (see ARCHITECTURE.md). It may use `cnnlab-augment`.

mod cache;
mod cifar;
mod dataset;
mod error;
mod export;
mod fingerprint;
pub mod folder;
pub mod idx;
mod imbalance;
mod shapes;
mod source;
mod split;
mod stats;

pub use cifar::encode as encode_cifar_batch;
pub use dataset::{Dataset, ImageShape, Label, SplitFiles, Splits};
pub use error::{Error, Result};
pub use export::{export_image_folder, read_labeled, read_unlabeled};
pub use fingerprint::{sha256_128, Fingerprints, FILE_SHA256, PIXELS_SHA256};
pub use folder::{LoadReport, Skipped, MAX_CLASSES};
pub use imbalance::{plan_counts, Imbalance, Variant, WeightScheme};
/// See [`shapes::TEST_STREAM`].
pub use shapes::TEST_STREAM as SHAPES_TEST_STREAM;
pub use shapes::{figure as shapes_figure, generate as generate_shapes, Figure, SHAPES_CLASSES, SHAPES_PER_CLASS};
pub use source::{load, load_with_progress, locate, DataConfig, Located, FASHION_MNIST_SYSTEM_DIR};
pub use split::{stratified, SplitIndices};
pub use stats::{folder_stats, FolderStats};
