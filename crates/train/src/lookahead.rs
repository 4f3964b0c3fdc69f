//! Lookahead weight averaging as airbench does it (`train.lookahead`).

use std::collections::HashMap;

use tch::nn::VarStore;
use tch::Tensor;

use crate::checkpoint;
use crate::config::Lookahead;
use crate::error::Result;

/// Slow copies of every floating-point variable of a model (weights and batch-norm
/// statistics), and the variables themselves.
#[derive(Debug)]
pub(crate) struct LookaheadState {
    cfg: Lookahead,
    names: Vec<String>,
    slow: Vec<Tensor>,
    fast: Vec<Tensor>,
}

impl LookaheadState {
    /// Starts the slow weights at the model's current ones.
    pub(crate) fn new(vs: &VarStore, cfg: Lookahead) -> Self {
        let (names, fast) = checkpoint::float_variables(vs);
        let slow = fast.iter().map(|t| t.detach().copy()).collect();
        LookaheadState { cfg, names, slow, fast }
    }

    /// After optimizer step `step` (1-based) of `total`: every `every` steps, blend
    /// with `decay^every * (step / total)^3`.
    pub(crate) fn after_step(&mut self, step: usize, total: usize) {
        if step.is_multiple_of(self.cfg.every) {
            let progress = (step as f64 / total.max(1) as f64).min(1.0);
            self.blend(self.cfg.decay.powi(self.cfg.every as i32) * progress.powi(3));
        }
    }

    /// The end of training: the model takes the slow weights.
    pub(crate) fn finish(&mut self) {
        self.blend(1.0);
    }

    /// `slow += (1 - decay) * (fast - slow)`, then `fast = slow`.
    fn blend(&mut self, decay: f64) {
        tch::no_grad(|| {
            for (slow, fast) in self.slow.iter_mut().zip(&self.fast) {
                let _ = slow.lerp_(fast, 1.0 - decay);
                fast.shallow_clone().copy_(slow);
            }
        });
    }

    /// The slow weights, named `lookahead.<variable>`, for the resumable checkpoint.
    pub(crate) fn state(&self) -> Vec<(String, Tensor)> {
        checkpoint::prefixed("lookahead", &self.names, &self.slow)
    }

    /// Restores what [`LookaheadState::state`] saved.
    pub(crate) fn load(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        checkpoint::restore_prefixed(saved, "lookahead", &self.names, &mut self.slow, " (was train.lookahead added?)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn blends_on_schedule_and_finish_takes_the_slow_weights() {
        let vs = VarStore::new(Device::Cpu);
        let mut w = vs.root().zeros("w", &[2]);
        let mut la = LookaheadState::new(&vs, Lookahead { every: 2, decay: 0.5 });
        let set = |w: &mut Tensor, v: f64| tch::no_grad(|| w.copy_(&Tensor::full([2], v, (Kind::Float, Device::Cpu))));
        let value = |w: &Tensor| f64::try_from(w.get(0)).unwrap();
        set(&mut w, 4.0);
        la.after_step(1, 4); // not a multiple of `every`: nothing happens
        assert_eq!(value(&w), 4.0);
        la.after_step(2, 4); // decay 0.5^2 * (2/4)^3 = 1/32: slow = 0 + 31/32 * 4
        assert!((value(&w) - 3.875).abs() < 1e-6, "{}", value(&w));
        set(&mut w, 10.0);
        la.finish(); // the model returns to the slow weights
        assert!((value(&w) - 3.875).abs() < 1e-6);
        let state = la.state();
        assert_eq!(state[0].0, "lookahead.w");
    }
}
