//! Adam, AdamW and SGD written over tensors, with PyTorch's update rules, so that
//! the optimizer state (moments, momentum buffers, step count) can be saved in a
//! checkpoint and restored exactly: tch's `nn::Optimizer` does not expose it.

use std::collections::HashMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::config::{OptimizerKind, TrainConfig};
use crate::error::{Error, Result};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

#[derive(Debug)]
struct Param {
    name: String,
    var: Tensor,
    /// `train.bias_lr_scale` for batch-norm shifts, 1 for the rest.
    lr_scale: f64,
    /// `train.backbone_lr_mult` for a backbone's variables, 1 for the rest: a plain
    /// learning-rate factor (a PyTorch parameter group's own `lr`).
    lr_mult: f64,
    /// Adam/AdamW: first and second moments. SGD with momentum: the buffer.
    state: Vec<Tensor>,
}

/// An optimizer over the trainable variables of a `VarStore`.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    weight_decay: f64,
    momentum: f64,
    nesterov: bool,
    steps: i64,
    params: Vec<Param>,
}

impl Optimizer {
    /// Over `vs`'s trainable variables, in name order.
    pub fn new(vs: &VarStore, cfg: &TrainConfig) -> Self {
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = match cfg.optimizer {
            OptimizerKind::Adam | OptimizerKind::Adamw => 2,
            OptimizerKind::Sgd if cfg.momentum > 0.0 => 1,
            OptimizerKind::Sgd => 0,
        };
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let state = (0..slots).map(|_| var.zeros_like().detach()).collect();
                let lr_scale = if is_norm_shift(&name) { cfg.bias_lr_scale } else { 1.0 };
                Param { name, var, lr_scale, lr_mult: 1.0, state }
            })
            .collect();
        Optimizer {
            kind: cfg.optimizer,
            weight_decay: cfg.weight_decay,
            momentum: cfg.momentum,
            nesterov: cfg.nesterov,
            steps: 0,
            params,
        }
    }

    /// Sets the learning-rate factor of the variables `select` picks (a backbone's,
    /// for discriminative learning rates).
    pub fn set_lr_mult(&mut self, select: impl Fn(&str) -> bool, mult: f64) {
        for p in self.params.iter_mut().filter(|p| select(&p.name)) {
            p.lr_mult = mult;
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> i64 {
        self.steps
    }

    pub fn zero_grad(&mut self) {
        for p in &self.params {
            let mut g = p.var.grad();
            if g.defined() {
                let _ = g.detach_();
                let _ = g.zero_();
            }
        }
    }

    /// The defined gradients (sharing storage with the variables' `.grad`, so that
    /// in-place changes reach the step).
    pub fn grads(&self) -> Vec<Tensor> {
        self.params.iter().map(|p| p.var.grad()).filter(|g| g.defined()).collect()
    }

    /// Scales all gradients so that their global L2 norm is at most `max`
    /// (`torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max: f64) -> Result<f64> {
        let grads = self.grads();
        if grads.is_empty() {
            return Ok(0.0);
        }
        let total = tch::no_grad(|| {
            let squares: Vec<Tensor> = grads.iter().map(|g| g.square().sum(Kind::Float)).collect();
            Tensor::stack(&squares, 0).sum(Kind::Float).sqrt()
        });
        let norm = f64::try_from(&total)?;
        let coef = max / (norm + 1e-6);
        if coef < 1.0 {
            tch::no_grad(|| {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(coef);
                }
            });
        }
        Ok(norm)
    }

    /// One update with learning rate `lr` from the current gradients. A parameter
    /// with an `lr_scale` steps with `lr * lr_scale` and decays by `weight_decay /
    /// lr_scale` (as airbench's parameter groups), so its decay per step is unchanged.
    pub fn step(&mut self, base_lr: f64) {
        self.steps += 1;
        let t = self.steps as i32;
        let (momentum, nesterov, kind) = (self.momentum, self.nesterov, self.kind);
        tch::no_grad(|| {
            for p in &mut self.params {
                let g = p.var.grad();
                if !g.defined() {
                    continue;
                }
                let (lr, wd) = (base_lr * p.lr_scale * p.lr_mult, self.weight_decay / p.lr_scale);
                let var = &mut p.var;
                match kind {
                    OptimizerKind::Adam | OptimizerKind::Adamw => {
                        let g = if kind == OptimizerKind::Adam && wd != 0.0 { &g + &*var * wd } else { g };
                        if kind == OptimizerKind::Adamw && wd != 0.0 {
                            let _ = var.g_mul_scalar_(1.0 - lr * wd);
                        }
                        let (m, v) = p.state.split_at_mut(1);
                        let _ = m[0].lerp_(&g, 1.0 - BETA1);
                        let _ = v[0].g_mul_scalar_(BETA2);
                        let _ = v[0].g_add_(&(g.square() * (1.0 - BETA2)));
                        let bias1 = 1.0 - BETA1.powi(t);
                        let bias2 = 1.0 - BETA2.powi(t);
                        let denom = v[0].sqrt() / bias2.sqrt() + EPS;
                        let _ = var.g_sub_(&(&m[0] / denom * (lr / bias1)));
                    }
                    OptimizerKind::Sgd => {
                        let mut g = if wd != 0.0 { &g + &*var * wd } else { g };
                        if momentum > 0.0 {
                            let buf = &mut p.state[0];
                            let _ = buf.g_mul_scalar_(momentum);
                            let _ = buf.g_add_(&g);
                            g = if nesterov { &g + &*buf * momentum } else { buf.shallow_clone() };
                        }
                        let _ = var.g_sub_(&(g * lr));
                    }
                }
            }
        });
    }

    /// How many parameters step with a scaled learning rate.
    pub fn scaled_params(&self) -> usize {
        self.params.iter().filter(|p| p.lr_scale != 1.0).count()
    }

    /// The state as named tensors (`optim.<var>.<slot>`), plus the step count.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![("optim.steps".to_string(), Tensor::from_slice(&[self.steps]))];
        for p in &self.params {
            for (slot, s) in p.state.iter().enumerate() {
                out.push((format!("optim.{}.{slot}", p.name), s.shallow_clone()));
            }
        }
        out
    }

    /// Restores what [`Optimizer::state`] saved.
    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let missing = |name: &str| Error::MissingTensor { name: name.to_string(), hint: " (an optimizer tensor)" };
        let steps = saved.get("optim.steps").ok_or_else(|| missing("optim.steps"))?;
        self.steps = i64::try_from(steps.view([-1]).get(0))?;
        tch::no_grad(|| {
            for p in &mut self.params {
                for (slot, s) in p.state.iter_mut().enumerate() {
                    let name = format!("optim.{}.{slot}", p.name);
                    let src = saved.get(&name).ok_or_else(|| missing(&name))?;
                    s.f_copy_(src)?;
                }
            }
            Ok(())
        })
    }
}

/// Whether a variable is a batch norm's shift: `batchnorm<i>.bias`, or a residual
/// block's `bn1` / `bn2` / `shortcut_bn` bias.
fn is_norm_shift(name: &str) -> bool {
    let mut parts = name.rsplit('.');
    parts.next() == Some("bias")
        && parts.next().is_some_and(|m| m.starts_with("batchnorm") || m.starts_with("bn") || m == "shortcut_bn")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::Device;

    /// A few steps on a small linear model, ours against libtorch's own optimizers
    /// (tch's `nn::Adam` etc. are libtorch's C++ `torch::optim` classes).
    fn compare(cfg: TrainConfig, reference: impl OptimizerConfig) {
        let xs = Tensor::randn([32, 5], (Kind::Float, Device::Cpu));
        let ys = Tensor::randn([32, 3], (Kind::Float, Device::Cpu));
        let (ours_vs, theirs_vs) = (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
        let ours_net = nn::linear(ours_vs.root() / "fc", 5, 3, Default::default());
        let theirs_net = nn::linear(theirs_vs.root() / "fc", 5, 3, Default::default());
        tch::no_grad(|| {
            theirs_net.ws.shallow_clone().copy_(&ours_net.ws);
            theirs_net.bs.as_ref().unwrap().shallow_clone().copy_(ours_net.bs.as_ref().unwrap());
        });
        let mut ours = Optimizer::new(&ours_vs, &cfg);
        let mut theirs = reference.build(&theirs_vs, cfg.lr).unwrap();
        for _ in 0..6 {
            let loss = (ours_net.forward(&xs) - &ys).square().mean(Kind::Float);
            ours.zero_grad();
            loss.backward();
            ours.step(cfg.lr);
            let loss = (theirs_net.forward(&xs) - &ys).square().mean(Kind::Float);
            theirs.backward_step(&loss);
        }
        let diff = f64::try_from((&ours_net.ws - &theirs_net.ws).abs().max()).unwrap();
        assert!(diff < 1e-6, "{:?}: weights differ by {diff}", cfg.optimizer);
        assert_eq!(ours.steps(), 6);
    }

    fn cfg(optimizer: OptimizerKind, weight_decay: f64, nesterov: bool) -> TrainConfig {
        TrainConfig { optimizer, lr: 0.05, weight_decay, nesterov, ..Default::default() }
    }

    #[test]
    fn matches_libtorch_adam_adamw_and_sgd() {
        compare(cfg(OptimizerKind::Adam, 0.0, false), nn::Adam::default());
        compare(cfg(OptimizerKind::Adam, 0.01, false), nn::Adam { wd: 0.01, ..Default::default() });
        compare(cfg(OptimizerKind::Adamw, 0.1, false), nn::AdamW { wd: 0.1, ..Default::default() });
        let sgd = nn::Sgd { momentum: 0.9, nesterov: true, wd: 5e-4, ..Default::default() };
        compare(cfg(OptimizerKind::Sgd, 5e-4, true), sgd);
        compare(cfg(OptimizerKind::Sgd, 0.0, false), nn::Sgd { momentum: 0.9, ..Default::default() });
    }

    #[test]
    fn batch_norm_shifts_step_with_the_scaled_rate_and_the_same_decay() {
        let cfg = TrainConfig {
            optimizer: OptimizerKind::Sgd,
            lr: 0.002,
            weight_decay: 5e-4,
            nesterov: true,
            bias_lr_scale: 64.0,
            ..Default::default()
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let shift = (vs.root() / "batchnorm1").var("bias", &[3], nn::Init::Const(0.5));
        let conv_bias = (vs.root() / "conv0").var("bias", &[3], nn::Init::Const(0.5));
        let mut ours = Optimizer::new(&vs, &cfg);
        assert_eq!(ours.scaled_params(), 1);
        // libtorch's SGD as airbench's parameter groups: lr * 64 with weight decay / 64.
        let reference = |lr: f64, wd: f64| {
            let vs = nn::VarStore::new(Device::Cpu);
            let v = vs.root().var("v", &[3], nn::Init::Const(0.5));
            let opt = nn::Sgd { momentum: 0.9, nesterov: true, wd, ..Default::default() }.build(&vs, lr).unwrap();
            (vs, v, opt)
        };
        let (_a, ref_shift, mut opt_shift) = reference(0.002 * 64.0, 5e-4 / 64.0);
        let (_b, ref_bias, mut opt_bias) = reference(0.002, 5e-4);
        let target = Tensor::from_slice(&[1.0f32, -2.0, 3.0]);
        for _ in 0..5 {
            let loss = (&shift - &target).square().sum(Kind::Float) + (&conv_bias - &target).square().sum(Kind::Float);
            ours.zero_grad();
            loss.backward();
            ours.step(cfg.lr);
            opt_shift.backward_step(&(&ref_shift - &target).square().sum(Kind::Float));
            opt_bias.backward_step(&(&ref_bias - &target).square().sum(Kind::Float));
        }
        let diff = |a: &Tensor, b: &Tensor| f64::try_from((a - b).abs().max()).unwrap();
        assert!(diff(&shift, &ref_shift) < 1e-5, "shift off by {}", diff(&shift, &ref_shift));
        assert!(diff(&conv_bias, &ref_bias) < 1e-6, "conv bias off by {}", diff(&conv_bias, &ref_bias));
        assert!(diff(&shift, &conv_bias) > 0.1, "the scale made a difference");
        for (name, want) in
            [("batchnorm1.bias", true), ("residual2.bn1.bias", true), ("residual2.shortcut_bn.bias", true)]
                .into_iter()
                .chain([("conv0.bias", false), ("batchnorm1.weight", false), ("linear5.bias", false)])
        {
            assert_eq!(is_norm_shift(name), want, "{name}");
        }
    }

    #[test]
    fn clips_the_global_norm() {
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[4], nn::Init::Const(1.0));
        let mut opt = Optimizer::new(&vs, &TrainConfig::default());
        (&w * 10.0).sum(Kind::Float).backward(); // gradient 10 per element: norm 20
        let norm = opt.clip_grad_norm(2.0).unwrap();
        assert!((norm - 20.0).abs() < 1e-4);
        let after = f64::try_from(w.grad().square().sum(Kind::Float).sqrt()).unwrap();
        assert!((after - 2.0).abs() < 1e-4, "norm after clipping {after}");
    }
}
