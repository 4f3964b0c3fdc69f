//! What a run was trained with: the `[model]` and `[train]` sections of its
//! `config.toml` (the `[data]` and `[augment]` sections are cnnlab-data's and
//! cnnlab-augment's). They are plain data, torch-free, so that every reader of a run
//! folder (the report, `status`, users' scripts) reads them without libtorch;
//! cnnlab-models and cnnlab-train plan, build and train them and re-export them.

pub mod model;
pub mod schedule;
pub mod train;

/// A config value that cannot work: the dotted key it is about (`train.lr`,
/// `augment.ops[0].p`, `model.layers[8]`), by which the experiment reader finds its
/// line, and the whole message (`train.lr: must be a positive number`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid { key: key.into(), message: message.into() }
    }

    /// `key: why`, the message of most checks.
    pub fn keyed(key: &str, why: impl std::fmt::Display) -> Self {
        Invalid::new(key, format!("{key}: {why}"))
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}
