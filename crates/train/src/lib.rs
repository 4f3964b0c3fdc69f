//! cnnlab-train: batches to tensors, the training loop and evaluation.
//!
//! [`train`] takes the data crate's in-memory [`cnnlab_data::Splits`], the augment
//! ops, a model config and a [`TrainConfig`], and fills the run folder, which
//! [`RunDir`] owns: every file name ([`files`]), one atomic writer, typed readers
//! ([`EpochRecord`], [`FinalMetrics`]) and the folder's lock. The loop is in parts:
//! `fit` (the recipe), `learner` (one step), `monitor` (after each epoch),
//! `checkpoint` (the resumable state), `evaluate` (scores and the test report),
//! `ovr` (one-vs-rest) and `seed` (every random stream).
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

mod amp;
mod batch;
mod checkpoint;
mod config;
mod ema;
mod error;
mod evaluate;
mod explain;
mod export;
mod fit;
mod learner;
mod lookahead;
mod lr_find;
mod mix;
mod monitor;
mod optim;
mod ovr;
mod predict;
mod resident;
mod run_dir;
mod schedule;
mod seed;
mod tensorboard;

pub use batch::{gather, EpochAugment, HostBatch, Normalizer};
pub use cnnlab_models::Precision;
pub use config::{DeviceChoice, EarlyStopping, Ema, Feed, Lookahead, Mix, MixKind, OptimizerKind, TrainConfig, Tta};
pub use error::{Error, Result};
pub use evaluate::{evaluate, evaluate_tta, score, Evaluation};
pub use explain::{cam_layer, GradCam};
pub use export::{model_safetensors, onnx_model, torchscript};
pub use fit::{resolve_device, train, RunOptions};
pub use lr_find::{lr_find, minimum, steep, valley, LrFindConfig, LrFinding};
pub use optim::Optimizer;
pub use predict::{pretrained_run, Predictor, MODEL_FOLDER_WEIGHTS};
pub use resident::check_device_pipeline;
// The run folder's format is cnnlab-run's; re-exported for the cli.
pub use cnnlab_run::{
    files, write_bytes, write_json, write_predictions, EpochRecord, FinalMetrics, RunDir, RunLock, RunState,
    StoredOptions, Weights, HISTORY_HEADER,
};
pub use run_dir::RunFiles;
pub use schedule::{warmup_factor, Monitor, PlateauState, Schedule};
pub use tensorboard::{
    hparams_file, write_hparams_experiment, write_hparams_session, EventFile, HParamDomain, HParamValue,
    HParamsExperiment, HParamsSession, SessionStatus, SCALAR_TAGS,
};
