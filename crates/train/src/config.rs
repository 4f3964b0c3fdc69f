//! The `[train]` section's types live in `cnnlab_run::recipe::train`, torch-free, so
//! that every reader of a run folder's `config.toml` reads them without libtorch.

pub use cnnlab_run::recipe::train::{
    DeviceChoice, EarlyStopping, Ema, Feed, Lookahead, Mix, MixKind, OptimizerKind, TrainConfig, Tta,
};
