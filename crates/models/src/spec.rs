//! The `[model]` section's types live in `cnnlab_run::recipe::model`, torch-free, so
//! that every reader of a run folder's `config.toml` reads them without libtorch.

pub use cnnlab_run::recipe::model::{
    Backbone, Head, HeadName, InitScheme, LayerSpec, ModelConfig, ModelKind, Precision,
};
