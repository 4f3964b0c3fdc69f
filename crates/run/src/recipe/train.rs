//! The `[train]` section of an experiment file.

use serde::{Deserialize, Serialize};

use super::model::Precision;
use super::schedule::{Monitor, Schedule};
use super::Invalid;

/// `early_stopping = { patience = 5 }`: stop after `patience` epochs in which
/// `train.monitor` did not improve by more than `min_delta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStopping {
    pub patience: usize,
    #[serde(default)]
    pub min_delta: f64,
}

/// `lookahead = { every = 5, decay = 0.95 }` (airbench's weight averaging): every
/// `every` steps the slow weights move toward the trained ones by `1 - d` and the
/// trained weights restart from them, with `d = decay^every * (step / total)^3`, so
/// averaging starts late and grows; after the last epoch the model takes the slow weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookahead {
    #[serde(default = "defaults::lookahead_every")]
    pub every: usize,
    #[serde(default = "defaults::lookahead_decay")]
    pub decay: f64,
}

/// `ema = { decay = 0.999, warmup = true }`: an exponential moving average of the
/// weights, as timm's `ModelEmaV3` keeps it: after every optimizer step `t`, each
/// trainable weight moves to `d * ema + (1 - d) * weight` and the batch-norm
/// statistics are copied; `d` is `decay`, or with `warmup` `min(decay, 1 - (1 +
/// (t - 1))^(-2/3))` (0 at the first step). Validation, `best.safetensors`, the last
/// weights and the test use the averaged weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ema {
    #[serde(default = "defaults::ema_decay")]
    pub decay: f64,
    #[serde(default)]
    pub warmup: bool,
}

/// `mix = { kind = "cutmix", alpha = 1.0, p = 1.0 }`: with probability `p` a training
/// batch is mixed with itself rolled by one image, with a weight drawn from
/// `Beta(alpha, alpha)` (`torchvision.transforms.v2.MixUp` / `CutMix`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    pub kind: MixKind,
    #[serde(default = "defaults::one")]
    pub alpha: f64,
    #[serde(default = "defaults::one")]
    pub p: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixKind {
    /// The images are blended: `lam * x + (1 - lam) * x_rolled`.
    Mixup,
    /// A box of `1 - lam` of the image area is pasted from the partner image.
    Cutmix,
}

pub use crate::Tta;

/// Where training batches are assembled and augmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feed {
    /// A host thread gathers and augments each batch (any augmentation) while the
    /// model trains on the previous one.
    #[default]
    Host,
    /// The whole training set is uploaded to the device once; flips and random crops
    /// (translations) are batched tensor ops there: no per-batch host work.
    Device,
}

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
    /// Gradient accumulation: one optimizer step per this many batches (an effective
    /// batch of `accumulate * batch_size`); the schedule counts optimizer steps.
    #[serde(default = "defaults::one_usize", skip_serializing_if = "defaults::is_one_usize")]
    pub accumulate: usize,
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
    /// Multiplies the learning rate, but not the weight decay, of batch-norm shifts
    /// (airbench's `bias_scaler`, 64): their decay per step stays `lr * weight_decay`.
    #[serde(default = "defaults::one", skip_serializing_if = "defaults::is_one")]
    pub bias_lr_scale: f64,
    /// Seeds weight initialisation, shuffling and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// Seed replicates: `cnnlab train` trains the experiment once per seed, into
    /// `<run>/seed-<k>/` (each of those runs has `seed = k` and no `seeds`); the report
    /// and `cnnlab compare` then give intervals over seeds. Empty: one run with `seed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "defaults::seed_list")]
    pub seeds: Vec<u64>,
    /// The seeds' runs are one model: its prediction is the mean of their class
    /// probabilities (a deep ensemble). The run folder gets the ensemble's own test
    /// results beside `seed-<k>/`, and its training time is the seeds' sum.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ensemble: bool,
    #[serde(default = "defaults::device")]
    pub device: DeviceChoice,
    /// Learning-rate schedule; `lr` is its base (peak) rate.
    #[serde(default)]
    pub schedule: Schedule,
    /// Linear warmup from ~0 to the scheduled rate over this many epochs (fractions allowed).
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Cross-entropy label smoothing, as in `nn.CrossEntropyLoss(label_smoothing=...)`.
    #[serde(default)]
    pub label_smoothing: f64,
    /// Clip the global gradient L2 norm to this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// The validation metric that picks `best.safetensors` and drives early stopping.
    #[serde(default = "defaults::monitor")]
    pub monitor: Monitor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStopping>,
    /// Test-time augmentation, see [`Tta`].
    #[serde(default)]
    pub tta: Tta,
    /// Lookahead weight averaging, see [`Lookahead`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookahead: Option<Lookahead>,
    /// An exponential moving average of the weights, see [`Ema`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<Ema>,
    /// `"fp32"` (default), `"bf16"` or `"fp16"`: autocast of the forward pass, with
    /// a dynamic loss scale for fp16 (`torch.autocast` + `GradScaler`); weights,
    /// gradients and the optimizer stay float32.
    #[serde(default, skip_serializing_if = "defaults::is_fp32")]
    pub precision: Precision,
    /// Weights and batches in channels-last memory order (`torch.channels_last`): on
    /// by default on CUDA, where cuDNN's tensor-core convolutions want it; `true`
    /// forces it on the CPU too, `false` off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels_last: Option<bool>,
    /// MixUp or CutMix of training batches, see [`Mix`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<Mix>,
    /// `"host"` (default) or `"device"`, see [`Feed`].
    #[serde(default)]
    pub pipeline: Feed,
    /// With a `[model] backbone`: train only the head for this many epochs (the
    /// backbone frozen, its batch norms in eval mode), then all of it (fastai's
    /// `fine_tune(freeze_epochs=...)`).
    #[serde(default, skip_serializing_if = "defaults::is_zero")]
    pub freeze_epochs: usize,
    /// With a `[model] backbone`: the backbone's learning rate as a fraction of the
    /// head's (discriminative learning rates, e.g. 0.1).
    #[serde(default = "defaults::one", skip_serializing_if = "defaults::is_one")]
    pub backbone_lr_mult: f64,
    /// Under Slurm: requeue the job after SIGTERM / SIGUSR1 stopped the run with a
    /// checkpoint (`cnnlab train --requeue`); read by the cli, not the trainer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requeue_on_signal: bool,
}

/// The same defaults serde fills in, so `Default` and an empty `[train]` agree.
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: defaults::epochs(),
            batch_size: defaults::batch_size(),
            accumulate: 1,
            eval_batch_size: defaults::eval_batch_size(),
            optimizer: defaults::optimizer(),
            lr: defaults::lr(),
            weight_decay: 0.0,
            momentum: defaults::momentum(),
            nesterov: false,
            bias_lr_scale: 1.0,
            seed: 0,
            seeds: Vec::new(),
            ensemble: false,
            device: defaults::device(),
            schedule: Schedule::Constant,
            warmup_epochs: 0.0,
            label_smoothing: 0.0,
            grad_clip: None,
            monitor: defaults::monitor(),
            early_stopping: None,
            tta: Tta::None,
            lookahead: None,
            ema: None,
            precision: Precision::Fp32,
            channels_last: None,
            mix: None,
            pipeline: Feed::Host,
            freeze_epochs: 0,
            backbone_lr_mult: 1.0,
            requeue_on_signal: false,
        }
    }
}

mod defaults {
    use super::{DeviceChoice, Monitor, OptimizerKind, Precision};

    pub(super) fn is_fp32(p: &Precision) -> bool {
        *p == Precision::Fp32
    }

    pub(super) fn one() -> f64 {
        1.0
    }
    pub(super) fn is_one(v: &f64) -> bool {
        *v == 1.0
    }

    pub(super) fn one_usize() -> usize {
        1
    }
    pub(super) fn is_one_usize(v: &usize) -> bool {
        *v == 1
    }
    pub(super) fn ema_decay() -> f64 {
        0.9998
    }

    pub(super) fn is_zero(v: &usize) -> bool {
        *v == 0
    }

    pub(super) fn lookahead_every() -> usize {
        5
    }
    pub(super) fn lookahead_decay() -> f64 {
        0.95
    }

    pub(super) fn monitor() -> Monitor {
        Monitor::ValAcc
    }

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
    /// `seeds`, which when written must name at least one seed (`[]` trains nothing).
    pub(super) fn seed_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        let seeds = <Vec<u64> as serde::Deserialize>::deserialize(d)?;
        if seeds.is_empty() {
            return Err(serde::de::Error::custom(
                "`seeds` = [] trains nothing: list the seeds (seeds = [0, 1, 2]) or leave train.seeds out",
            ));
        }
        Ok(seeds)
    }
}

impl TrainConfig {
    /// Rejects values that cannot train, naming the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        let checks = [
            (self.epochs == 0, "train.epochs", "must be at least 1"),
            (self.batch_size == 0, "train.batch_size", "must be at least 1"),
            (self.accumulate == 0, "train.accumulate", "must be at least 1"),
            (self.ema.is_some_and(|e| !(0.0..1.0).contains(&e.decay)), "train.ema.decay", "must be in [0, 1)"),
            (self.eval_batch_size == 0, "train.eval_batch_size", "must be at least 1"),
            (self.lr.is_nan() || self.lr <= 0.0, "train.lr", "must be a positive number"),
            // Parameters are float32: 1e308 is positive but no float32 rate.
            (self.lr >= f32::MAX as f64, "train.lr", "must be below 3.4e38, float32's largest number"),
            (!(self.weight_decay >= 0.0 && self.weight_decay.is_finite()), "train.weight_decay", "must be >= 0"),
            (!(0.0..1.0).contains(&self.momentum), "train.momentum", "must be in [0, 1)"),
            (!(self.warmup_epochs >= 0.0 && self.warmup_epochs.is_finite()), "train.warmup_epochs", "must be >= 0"),
            (!(0.0..1.0).contains(&self.label_smoothing), "train.label_smoothing", "must be in [0, 1)"),
            (self.grad_clip.is_some_and(|c| c.is_nan() || c <= 0.0), "train.grad_clip", "must be a positive number"),
            (self.nesterov && self.momentum == 0.0, "train.nesterov", "needs train.momentum > 0"),
            (
                !(self.bias_lr_scale > 0.0 && self.bias_lr_scale.is_finite()),
                "train.bias_lr_scale",
                "must be a positive number",
            ),
            (self.early_stopping.is_some_and(|e| e.patience == 0), "train.early_stopping.patience", "must be >= 1"),
            (self.lookahead.is_some_and(|l| l.every == 0), "train.lookahead.every", "must be >= 1"),
            (
                self.seeds.iter().enumerate().any(|(i, s)| self.seeds[..i].contains(s)),
                "train.seeds",
                "lists a seed twice",
            ),
            (self.ensemble && self.seeds.len() < 2, "train.ensemble", "needs train.seeds with at least two seeds"),
            (
                self.lookahead.is_some_and(|l| !(0.0..=1.0).contains(&l.decay)),
                "train.lookahead.decay",
                "must be in [0, 1]",
            ),
            (self.mix.is_some_and(|m| !(m.alpha > 0.0 && m.alpha.is_finite())), "train.mix.alpha", "must be > 0"),
            (self.mix.is_some_and(|m| !(0.0..=1.0).contains(&m.p)), "train.mix.p", "must be in [0, 1]"),
            (
                !(self.backbone_lr_mult > 0.0 && self.backbone_lr_mult.is_finite()),
                "train.backbone_lr_mult",
                "must be a positive number",
            ),
        ];
        match checks.iter().find(|(bad, _, _)| *bad) {
            Some((_, key, message)) => Err(Invalid::keyed(key, message)),
            None => self.schedule.validate().map_err(|message| Invalid::keyed("train.schedule", message)),
        }
    }
}
