//! cnnlab-run: the run folder, cnnlab's file format (`runs/<group>/<stem>/`). Every
//! file a run leaves is named in [`files`] and nowhere else, written through one
//! atomic writer ([`write_bytes`]: a temporary file renamed into place, removed again
//! when the write fails), read back as typed values ([`RunDir`]), and owned by one
//! process at a time ([`RunDir::lock`]).
//!
//! This crate never depends on `tch` (nor decodes images): the light `cnnlab` binary,
//! the report and users' own tools read run folders through it without libtorch.
//! Tensor files (checkpoints, weights) are written by cnnlab-train through [`commit`].

mod dir;
mod error;
mod lock;
mod loss;
mod predictions;
mod progress;
pub mod recipe;
mod records;
mod tables;
mod write;

/// The file names of a run folder.
pub mod files {
    /// The resolved experiment (`extends` merged, overrides applied).
    pub const CONFIG: &str = "config.toml";
    pub const CLASSES: &str = "classes.json";
    pub const SHAPE: &str = "shape.json";
    pub const CLASS_COUNTS: &str = "class_counts.json";
    pub const SPLIT: &str = "split.json";
    pub const SKIPPED: &str = "skipped.json";
    pub const NORMALIZER: &str = "normalizer.json";
    pub const HISTORY: &str = "history.csv";
    pub const LAST: &str = "last.safetensors";
    pub const BEST: &str = "best.safetensors";
    pub const RESUME: &str = "resume.safetensors";
    pub const METRICS: &str = "metrics.json";
    pub const REPORT: &str = "classification_report.txt";
    pub const PREDICTIONS: &str = "predictions.csv";
    pub const LOG: &str = "train.log";
    pub const LOCK: &str = ".lock";
    /// The `cnnlab train` options that change what is trained but are not in the
    /// config (`--max-batches`), which `--resume` restores.
    pub const OPTIONS: &str = "options.json";
    /// Folder of the run's TensorBoard event file.
    pub const TB: &str = "tb";
    /// The class pairs most often confused on the test set (`cnnlab train` writes it).
    pub const MOST_CONFUSED: &str = "most_confused.csv";
    /// The test examples with the highest loss (beside `plots/top_losses.png`).
    pub const TOP_LOSSES: &str = "top_losses.csv";
    /// Folder of a one-vs-rest run's member networks, one sub-folder per class.
    pub const OVR: &str = "ovr";
    /// Folder of the report's plots.
    pub const PLOTS: &str = "plots";
    /// Pretrained weights converted from a `.pth` (or `cnnlab pretrained`'s).
    pub const PRETRAINED: &str = "pretrained.safetensors";

    /// The pictures inside [`PLOTS`]: the report's and those `cnnlab train` draws.
    pub mod plots {
        /// Loss and accuracy per epoch.
        pub const CURVES: &str = "curves.png";
        /// The test confusion matrix.
        pub const CONFUSION: &str = "confusion.png";
        /// Per-class F1 on the test set.
        pub const F1: &str = "f1.png";
        /// Training images per class.
        pub const DISTRIBUTION: &str = "distribution.png";
        /// The test images with the highest loss.
        pub const TOP_LOSSES: &str = "top_losses.png";
        /// Grad-CAM of a few test images per class.
        pub const GRADCAM: &str = "gradcam.png";
    }
}

pub use dir::{safe_name, RunDir};
pub use error::{Error, Result};
pub use lock::RunLock;
pub use loss::{example_loss, mean_loss, LOG_EPS};
pub use predictions::{
    read_predictions, write_predictions, FingerprintColumn, Fingerprints, Predictions, FINGERPRINT_COLUMNS,
};
pub use progress::PROGRESS_TENSOR;
pub use records::{peak_rss_mb, EpochRecord, FinalMetrics, RunState, StoredOptions, Tta, Weights, HISTORY_HEADER};
pub use tables::{
    read_most_confused, read_top_losses, thousands, write_most_confused, write_top_losses, Confusion, TopLossRow,
};
pub use write::{commit, write_bytes, write_json};
