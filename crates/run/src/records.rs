//! The typed contents of a run's files: `history.csv` rows, `metrics.json`,
//! `options.json`, and which weights and test-time augmentation a run used.

use serde::{Deserialize, Deserializer, Serialize};

use crate::files;

/// Header of `history.csv`, one row per epoch.
pub const HISTORY_HEADER: [&str; 9] =
    ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr", "seconds", "images_per_sec"];

/// One row of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    /// Macro-averaged F1 on the validation split.
    pub val_f1: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    pub seconds: f64,
    pub images_per_sec: f64,
}

impl EpochRecord {
    /// The row without its timing columns (`seconds`, `images_per_sec`, which no two
    /// runs share): epoch, train loss and accuracy, validation loss, accuracy and F1,
    /// learning rate, each rounded to `decimals` places (`None`: exact). What an
    /// interrupted and resumed run must have in common with an uninterrupted one.
    pub fn without_timing(&self, decimals: Option<i32>) -> [f64; 7] {
        let values =
            [self.epoch as f64, self.train_loss, self.train_acc, self.val_loss, self.val_acc, self.val_f1, self.lr];
        match decimals {
            Some(d) => values.map(|v| (v * 10f64.powi(d)).round() / 10f64.powi(d)),
            None => values,
        }
    }
}

/// What `metrics.json` holds for the final evaluation on the test split: the keys of
/// `cnnlab metrics --json` (from cnnlab-metrics) plus the run's own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    #[serde(flatten)]
    pub report: cnnlab_metrics::Report,
    /// Mean cross-entropy on the test split (`accuracy` is in the report).
    pub loss: f64,
    pub n_samples: usize,
    /// Epochs actually trained (fewer than configured after early stopping).
    pub epochs: usize,
    pub device: String,
    pub trainable_params: i64,
    pub train_seconds: f64,
    pub images_per_sec: f64,
    #[serde(default)]
    pub tta: Tta,
    /// The process's peak resident memory (Linux' VmHWM) when the run finished, MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
}

/// What `options.json` holds: the training options of a run that are not in its
/// config. A run folder without the file (written before it existed) had none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOptions {
    /// At most this many batches per epoch (`--max-batches`, `--quick`).
    #[serde(default)]
    pub max_batches: Option<usize>,
}

/// This process's peak resident set size in MB (`VmHWM` of /proc/self/status); `None`
/// where there is no such file.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Which trained weights of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// `best.safetensors`: the epoch with the best `train.monitor`.
    Best,
    /// `last.safetensors`: the final weights, which the run's test metrics used.
    Last,
}

impl Weights {
    pub fn file(self) -> &'static str {
        match self {
            Weights::Best => files::BEST,
            Weights::Last => files::LAST,
        }
    }
}

/// How far a run folder got.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// No run has started here (missing folder, or no `config.toml` yet).
    Empty,
    /// Training stopped before the test evaluation; `--resume` continues it.
    Unfinished {
        /// Whole epochs that `resume.safetensors` holds (where `--resume` goes on).
        epochs_done: usize,
    },
    /// `metrics.json` was written.
    Finished { accuracy: f64, epochs: usize },
}

/// Test-time augmentation: `false`/`"none"`, `true`/`"flip"` (each image and its
/// mirror), or `"flip_translate"` (airbench's level 2: the flip pair, plus the flip
/// pairs of the image shifted one pixel up-left and down-right, weighted 1/2, 1/4, 1/4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tta {
    #[default]
    None,
    Flip,
    FlipTranslate,
}

impl Tta {
    pub const ALL: [Tta; 3] = [Tta::None, Tta::Flip, Tta::FlipTranslate];

    /// The name a config file uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Tta::None => "none",
            Tta::Flip => "flip",
            Tta::FlipTranslate => "flip_translate",
        }
    }

    /// The variant a config file (or `--tta`) names; `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<Tta> {
        Tta::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl<'de> Deserialize<'de> for Tta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Bool(bool),
            Name(String),
        }
        match Repr::deserialize(d)? {
            Repr::Bool(on) => Ok(if on { Tta::Flip } else { Tta::None }),
            Repr::Name(name) => Tta::from_name(&name).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown tta `{name}`, expected true, false, \"none\", \"flip\" or \"flip_translate\""
                ))
            }),
        }
    }
}
