//! cnnlab-train: batches to tensors, the training loop and evaluation.
//!
//! [`train`] takes the data crate's in-memory [`cnnlab_data::Splits`], the augment
//! ops, a model config and a [`TrainConfig`], and writes the run folder:
//! `history.csv` (one row per epoch), `last.safetensors` / `best.safetensors`
//! (written to a temporary file, then renamed) and `metrics.json`.
//!
//! ```no_run
//! # fn demo(splits: &cnnlab_data::Splits, model: &cnnlab_models::ModelConfig) {
//! use cnnlab_train::{train, RunOptions, TrainConfig};
//! let opts = RunOptions { out_dir: "runs/demo".into(), quiet: true, ..Default::default() };
//! let metrics = train(splits, &Default::default(), &[], model, &TrainConfig::default(), &opts).unwrap();
//! println!("test accuracy {:.4}", metrics.report.accuracy);
//! # }
//! ```
//!
//! With `cnnlab-models`, the only crate that touches tensors (ARCHITECTURE.md).

mod batch;
mod config;
mod error;
mod lookahead;
mod mix;
mod optim;
mod predict;
mod resident;
mod schedule;
mod trainer;

pub use batch::{gather, EpochAugment, HostBatch, Normalizer};
pub use config::{DeviceChoice, EarlyStopping, Feed, Lookahead, Mix, MixKind, OptimizerKind, TrainConfig, Tta};
pub use error::{Error, Result};
pub use optim::Optimizer;
pub use predict::{Predictor, Weights};
pub use schedule::{warmup_factor, Monitor, PlateauState, Schedule};
pub use trainer::{
    evaluate, evaluate_tta, resolve_device, train, write_json, write_predictions, EpochRecord, Evaluation,
    FinalMetrics, RunOptions, HISTORY_HEADER, RESUME_FILE,
};
