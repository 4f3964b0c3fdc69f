//! `train.ema`: an exponential moving average of the weights, as timm's `ModelEmaV3`
//! with `exclude_buffers` (the batch-norm statistics are copied, not averaged).

use std::collections::HashMap;

use tch::nn::VarStore;
use tch::Tensor;

use crate::checkpoint;
use crate::config::Ema;
use crate::error::{Error, Result};

/// The averaged copy of every floating-point variable, and the variables.
#[derive(Debug)]
pub(crate) struct EmaState {
    cfg: Ema,
    names: Vec<String>,
    /// Whether each variable trains (averaged) or is a buffer (copied).
    trains: Vec<bool>,
    average: Vec<Tensor>,
    model: Vec<Tensor>,
    /// Optimizer steps averaged so far.
    updates: i64,
    /// Whether the model holds the averaged weights now (see [`EmaState::swap`]).
    swapped: bool,
    /// Training is over: the model keeps the average (see [`EmaState::finish`]).
    finished: bool,
}

impl EmaState {
    /// Starts the average at the model's current weights.
    pub(crate) fn new(vs: &VarStore, cfg: Ema) -> Self {
        let (names, model) = checkpoint::float_variables(vs);
        let trains = model.iter().map(Tensor::requires_grad).collect();
        let average = model.iter().map(|t| t.detach().copy()).collect();
        EmaState { cfg, names, trains, average, model, updates: 0, swapped: false, finished: false }
    }

    /// timm's `get_decay(step)` for optimizer step `step` (1-based): 0 at the first,
    /// then `decay`, or with warmup `1 - (1 + (step - 1))^(-2/3)` capped at `decay`.
    pub(crate) fn decay_at(&self, step: i64) -> f64 {
        let t = (step - 1).max(0);
        if t == 0 {
            return 0.0;
        }
        if self.cfg.warmup {
            (1.0 - (1.0 + t as f64).powf(-2.0 / 3.0)).min(self.cfg.decay).max(0.0)
        } else {
            self.cfg.decay
        }
    }

    /// After an optimizer step: `average = d * average + (1 - d) * weight` for the
    /// trained variables, a copy for the buffers.
    pub(crate) fn update(&mut self) {
        debug_assert!(!self.swapped, "the model holds the average: swap back before training");
        self.updates += 1;
        let decay = self.decay_at(self.updates);
        tch::no_grad(|| {
            for ((average, model), trains) in self.average.iter_mut().zip(&self.model).zip(&self.trains) {
                if *trains {
                    let _ = average.lerp_(model, 1.0 - decay);
                } else {
                    average.copy_(model);
                }
            }
        });
    }

    /// Exchanges the model's weights and the average: call once to evaluate or save
    /// the averaged weights, again to train on. Exact (a copy both ways).
    pub(crate) fn swap(&mut self) {
        tch::no_grad(|| {
            for (average, model) in self.average.iter_mut().zip(&self.model) {
                let kept = model.detach().copy();
                model.shallow_clone().copy_(average);
                average.copy_(&kept);
            }
        });
        self.swapped = !self.swapped;
    }

    /// The model holds the average for good (training is over).
    pub(crate) fn finish(&mut self) {
        if !self.swapped {
            self.swap();
        }
        self.finished = true;
    }

    /// Before evaluating or saving: the model takes the average (a no-op if it has it).
    pub(crate) fn hold_average(&mut self) {
        if !self.swapped {
            self.swap();
        }
    }

    /// Before training: the model takes its own weights back. After [`EmaState::finish`]
    /// (a finished run given more epochs) it trains on from the average, which restarts
    /// there, as lookahead's slow weights do.
    pub(crate) fn hold_trained(&mut self) {
        if self.finished {
            tch::no_grad(|| {
                for (average, model) in self.average.iter_mut().zip(&self.model) {
                    average.copy_(model);
                }
            });
            (self.swapped, self.finished) = (false, false);
        } else if self.swapped {
            self.swap();
        }
    }

    /// The average (or, while swapped, the model's own weights), named
    /// `ema.<variable>`, the update count and which side the model holds, for the
    /// resumable checkpoint.
    pub(crate) fn state(&self) -> Vec<(String, Tensor)> {
        let mut named = checkpoint::prefixed("ema", &self.names, &self.average);
        let flags = [self.updates, i64::from(self.swapped), i64::from(self.finished)];
        named.push(("ema_updates".into(), Tensor::from_slice(&flags)));
        named
    }

    /// Restores what [`EmaState::state`] saved.
    pub(crate) fn load(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        const HINT: &str = " (was train.ema added?)";
        checkpoint::restore_prefixed(saved, "ema", &self.names, &mut self.average, HINT)?;
        let updates =
            saved.get("ema_updates").ok_or(Error::MissingTensor { name: "ema_updates".into(), hint: HINT })?;
        let flags = Vec::<i64>::try_from(updates)?;
        let [updates, swapped, finished] = flags[..] else {
            return Err(Error::MissingTensor { name: "ema_updates (3 values)".into(), hint: "" });
        };
        (self.updates, self.swapped, self.finished) = (updates, swapped != 0, finished != 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    /// The update formula on a tiny network, against timm's `ModelEmaV3` arithmetic
    /// written out: step 1 copies, then `lerp` by `1 - d`; buffers are copied; the
    /// warmup decay is `1 - (1 + t)^(-2/3)`.
    #[test]
    fn averages_weights_copies_buffers_and_swaps_exactly() {
        let vs = VarStore::new(Device::Cpu);
        let mut w = vs.root().zeros("w", &[2]);
        let mut buffer = vs.root().zeros_no_train("running_mean", &[2]);
        let _bn = nn::batch_norm1d(vs.root() / "bn", 2, Default::default());
        let mut ema = EmaState::new(&vs, Ema { decay: 0.9, warmup: false });
        let set = |t: &mut Tensor, v: f64| tch::no_grad(|| t.copy_(&Tensor::full([2], v, (Kind::Float, Device::Cpu))));
        let value = |t: &Tensor| f64::try_from(t.get(0)).unwrap();
        set(&mut w, 4.0);
        set(&mut buffer, 7.0);
        ema.update(); // step 1: decay 0, the average takes the weights
        set(&mut w, 14.0);
        set(&mut buffer, 8.0);
        ema.update(); // step 2: 0.9 * 4 + 0.1 * 14 = 5
        ema.swap();
        assert!((value(&w) - 5.0).abs() < 1e-6, "{}", value(&w));
        assert_eq!(value(&buffer), 8.0, "buffers are copied");
        ema.swap();
        assert_eq!((value(&w), value(&buffer)), (14.0, 8.0), "swapping back is exact");

        let warm = EmaState::new(&vs, Ema { decay: 0.999, warmup: true });
        assert_eq!(warm.decay_at(1), 0.0);
        assert!((warm.decay_at(2) - (1.0 - 2f64.powf(-2.0 / 3.0))).abs() < 1e-12);
        assert!((warm.decay_at(1_000_000) - 0.999).abs() < 1e-12, "capped at decay");
        let state = ema.state();
        assert!(state.iter().any(|(n, _)| n == "ema.w") && state.iter().any(|(n, _)| n == "ema_updates"));
    }
}
