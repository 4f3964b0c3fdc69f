//! What learns: the network and its variables, the optimizer, lookahead and the loss
//! settings (label smoothing, class weights, MixUp / CutMix). One training step at a
//! time; it knows nothing of epochs, files or feeds.

use cnnlab_models::{build, Autocast, ModelConfig, Network, Precision, Shape};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::amp::GradScaler;
use crate::config::TrainConfig;
use crate::ema::EmaState;
use crate::error::{Error, Result};
use crate::lookahead::LookaheadState;
use crate::mix::mix_batch;
use crate::optim::Optimizer;
use crate::seed;

pub(crate) struct Learner {
    pub(crate) vs: nn::VarStore,
    pub(crate) net: Network,
    pub(crate) opt: Optimizer,
    pub(crate) lookahead: Option<LookaheadState>,
    pub(crate) ema: Option<EmaState>,
    /// fp16's loss scale (`train.precision = "fp16"`).
    pub(crate) scaler: Option<GradScaler>,
    class_weights: Option<Tensor>,
    cfg: TrainConfig,
    /// The backbone's trainable variables while it is frozen.
    frozen: Vec<Tensor>,
}

/// Which step of the run a batch is: for the mixing draws, the error message and
/// lookahead's schedule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepAt {
    pub(crate) epoch: usize,
    /// 0-based batch index within the epoch.
    pub(crate) batch: usize,
    /// Optimizer steps of the whole run, as lookahead counts them.
    pub(crate) total_steps: usize,
}

/// What one step did, for the epoch's running sums.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepStats {
    /// Mean loss of the batch.
    pub(crate) loss: f64,
    pub(crate) correct: i64,
    pub(crate) n: usize,
}

impl Learner {
    /// Builds the network (weights drawn from `train.seed`) and its optimizer, lets
    /// `prepare` fit the layers that learn from data before training (whitening), then
    /// starts lookahead from the prepared weights.
    pub(crate) fn new(
        model: &ModelConfig,
        cfg: &TrainConfig,
        (input, classes): (Shape, i64),
        class_weights: Option<Vec<f32>>,
        device: Device,
        prepare: impl FnOnce(&Network),
    ) -> Result<Self> {
        seed::init(cfg.seed);
        let mut vs = nn::VarStore::new(device);
        let net = build(&vs.root(), model, input, classes)?;
        if let Some(path) = &model.pretrained {
            let loaded = cnnlab_models::load_pretrained(&mut vs, &net, std::path::Path::new(path))?;
            tracing::info!(
                "pretrained weights: {} tensors from {path}{}",
                loaded.loaded,
                match loaded.skipped_head.is_empty() {
                    true => String::new(),
                    false => format!(" (its classifier {} left out: a new head)", loaded.skipped_head.join(", ")),
                }
            );
        }
        if cfg.channels_last.unwrap_or(device.is_cuda()) {
            net.set_channels_last(&vs);
        }
        let mut opt = Optimizer::new(&vs, cfg);
        if net.backbone.is_some() && cfg.backbone_lr_mult != 1.0 {
            opt.set_lr_mult(|name| net.in_backbone(name), cfg.backbone_lr_mult);
        }
        prepare(&net);
        let lookahead = cfg.lookahead.map(|l| LookaheadState::new(&vs, l));
        let ema = cfg.ema.map(|e| EmaState::new(&vs, e));
        let class_weights = class_weights.map(|w| Tensor::from_slice(&w).to_device(device));
        let scaler = (cfg.precision == Precision::Fp16).then(|| GradScaler::new(device));
        if cfg.precision == Precision::Fp16 && !device.is_cuda() {
            // Measured on shapes/seed3-final: 34 images/s against 2,200 in fp32.
            tracing::warn!("train.precision = \"fp16\" on the CPU runs about 60x slower than fp32 (no fast float16 kernels there); use \"bf16\" on CPUs");
        }
        if device.is_cuda() {
            // Each convolution shape is timed once and the fastest algorithm kept
            // (`torch.backends.cudnn.benchmark = True`): batch shapes repeat.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        Ok(Learner { vs, net, opt, lookahead, ema, scaler, class_weights, cfg: cfg.clone(), frozen: vec![] })
    }

    /// Freezes the backbone (no gradients, batch norms in eval mode) or thaws it;
    /// a no-op without one.
    pub(crate) fn freeze_backbone(&mut self, frozen: bool) {
        if self.net.backbone.is_none() {
            return;
        }
        self.net.set_backbone_frozen(frozen);
        if frozen && self.frozen.is_empty() {
            for (name, var) in self.vs.variables() {
                if self.net.in_backbone(&name) && var.requires_grad() {
                    self.frozen.push(var.set_requires_grad(false));
                }
            }
        } else if !frozen {
            for var in self.frozen.drain(..) {
                let _ = var.set_requires_grad(true);
            }
        }
    }

    fn loss(&self, logits: &Tensor, ys: &Tensor) -> Tensor {
        logits.cross_entropy_loss(ys, self.class_weights.as_ref(), tch::Reduction::Mean, -100, self.cfg.label_smoothing)
    }

    /// Forward, loss and backward of one batch, the loss weighted by `weight` (its
    /// share of the optimizer step's samples): the gradients add to those already
    /// there. A non-finite loss is an error before the backward pass.
    pub(crate) fn accumulate(&mut self, at: StepAt, xs: &Tensor, ys: &Tensor, weight: f64) -> Result<StepStats> {
        // Mixing draws from its own generator, seeded per batch: a resumed run mixes alike.
        let mixed = self.cfg.mix.and_then(|m| mix_batch(xs, ys, &m, &mut seed::mix(self.cfg.seed, at.epoch, at.batch)));
        let logits = self.forward(mixed.as_ref().map_or(xs, |m| &m.xs), true)?;
        let loss = match &mixed {
            Some(m) => self.loss(&logits, ys) * m.lam + self.loss(&logits, &m.partner) * (1.0 - m.lam),
            None => self.loss(&logits, ys),
        };
        let value = f64::try_from(&loss)?;
        if !value.is_finite() {
            return Err(Error::NonFinite { value, epoch: at.epoch, batch: at.batch + 1 });
        }
        let loss = if weight == 1.0 { loss } else { loss * weight };
        match &self.scaler {
            Some(scaler) => scaler.scale(&loss).backward(),
            None => loss.backward(),
        }
        let correct = i64::try_from(logits.argmax(-1, false).eq_tensor(ys).sum(Kind::Int64))?;
        Ok(StepStats { loss: value, correct, n: ys.size()[0] as usize })
    }

    /// Clipping, one optimizer step at learning rate `lr` on the gradients gathered
    /// since [`Optimizer::zero_grad`], then lookahead and the weights' average.
    /// With fp16, the gradients are unscaled first and a step whose gradients
    /// overflowed is skipped (the loss scale backs off).
    pub(crate) fn apply(&mut self, at: StepAt, lr: f64) -> Result<()> {
        if let Some(scaler) = self.scaler.as_mut() {
            let finite = scaler.unscale(&mut self.opt.grads())?;
            scaler.update()?;
            if !finite {
                tracing::debug!(
                    "fp16: gradients overflowed at epoch {} batch {}; step skipped",
                    at.epoch,
                    at.batch + 1
                );
                return Ok(());
            }
        }
        if let Some(max) = self.cfg.grad_clip {
            self.opt.clip_grad_norm(max)?;
        }
        self.opt.step(lr);
        if let Some(la) = self.lookahead.as_mut() {
            la.after_step(self.opt.steps() as usize, at.total_steps);
        }
        if let Some(ema) = self.ema.as_mut() {
            ema.update();
        }
        Ok(())
    }

    /// The network's float32 logits for `xs`, its forward pass under autocast for
    /// bf16 / fp16 (the loss and everything after it in float32, as with
    /// `torch.autocast`).
    fn forward(&self, xs: &Tensor, train: bool) -> Result<Tensor> {
        let guard = Autocast::enter(xs.device(), self.cfg.precision)?;
        let logits = self.net.forward_t(xs, train);
        drop(guard);
        Ok(match self.cfg.precision {
            Precision::Fp32 => logits,
            _ => logits.to_kind(Kind::Float),
        })
    }

    /// Before evaluating or saving a checkpoint: the model takes the weights' average
    /// (`train.ema`; a no-op without).
    pub(crate) fn use_average(&mut self) {
        if let Some(ema) = self.ema.as_mut() {
            ema.hold_average();
        }
    }

    /// Before training: the model takes its own weights back from [`Learner::use_average`].
    pub(crate) fn use_trained(&mut self) {
        if let Some(ema) = self.ema.as_mut() {
            ema.hold_trained();
        }
    }

    /// The end of training: the model takes lookahead's slow weights, or the weights'
    /// average (a no-op without either, and when they were taken already).
    pub(crate) fn finish(&mut self) {
        if let Some(la) = self.lookahead.as_mut() {
            la.finish();
        }
        if let Some(ema) = self.ema.as_mut() {
            ema.finish();
        }
    }
}
