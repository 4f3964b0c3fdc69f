//! The `[train]` section of an experiment file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when libtorch sees a GPU, else CPU.
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    /// Batch size of evaluation (no gradients, so it can be larger).
    #[serde(default = "defaults::eval_batch_size")]
    pub eval_batch_size: usize,
    #[serde(default = "defaults::optimizer")]
    pub optimizer: OptimizerKind,
    #[serde(default = "defaults::lr")]
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// SGD only.
    #[serde(default = "defaults::momentum")]
    pub momentum: f64,
    /// SGD only.
    #[serde(default)]
    pub nesterov: bool,
    /// Seeds weight initialisation, shuffling and augmentation.
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "defaults::device")]
    pub device: DeviceChoice,
}

/// The same defaults serde fills in, so `Default` and an empty `[train]` agree.
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: defaults::epochs(),
            batch_size: defaults::batch_size(),
            eval_batch_size: defaults::eval_batch_size(),
            optimizer: defaults::optimizer(),
            lr: defaults::lr(),
            weight_decay: 0.0,
            momentum: defaults::momentum(),
            nesterov: false,
            seed: 0,
            device: defaults::device(),
        }
    }
}

mod defaults {
    use super::{DeviceChoice, OptimizerKind};

    pub(super) fn epochs() -> usize {
        10
    }
    pub(super) fn batch_size() -> usize {
        64
    }
    pub(super) fn eval_batch_size() -> usize {
        500
    }
    pub(super) fn optimizer() -> OptimizerKind {
        OptimizerKind::Adam
    }
    pub(super) fn lr() -> f64 {
        1e-3
    }
    pub(super) fn momentum() -> f64 {
        0.9
    }
    pub(super) fn device() -> DeviceChoice {
        DeviceChoice::Auto
    }
}

impl TrainConfig {
    /// Rejects values that cannot train, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (self.epochs == 0, "train.epochs must be at least 1"),
            (self.batch_size == 0, "train.batch_size must be at least 1"),
            (self.eval_batch_size == 0, "train.eval_batch_size must be at least 1"),
            (!(self.lr > 0.0 && self.lr < f32::MAX as f64), "train.lr must be a positive number"),
            (!(self.weight_decay >= 0.0 && self.weight_decay.is_finite()), "train.weight_decay must be >= 0"),
            (!(0.0..1.0).contains(&self.momentum), "train.momentum must be in [0, 1)"),
        ];
        match checks.iter().find(|(bad, _)| *bad) {
            Some((_, msg)) => Err(msg.to_string()),
            None => Ok(()),
        }
    }
}
