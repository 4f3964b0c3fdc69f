//! Learning-rate schedules (PyTorch's `lr_scheduler` semantics) and the metric a run
//! watches for its best checkpoint, early stopping and reduce-on-plateau.

use serde::{Deserialize, Serialize};

/// A metric of the per-epoch validation pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monitor {
    ValLoss,
    ValAcc,
    /// Macro-averaged F1.
    ValF1,
}

impl Monitor {
    /// Its value in a `history.csv` row.
    pub fn of(self, row: &crate::EpochRecord) -> f64 {
        match self {
            Monitor::ValLoss => row.val_loss,
            Monitor::ValAcc => row.val_acc,
            Monitor::ValF1 => row.val_f1,
        }
    }

    /// Whether larger values are better.
    pub fn maximize(self) -> bool {
        !matches!(self, Monitor::ValLoss)
    }

    /// True when `value` beats `best` by more than `min_delta`.
    pub fn improves(self, value: f64, best: Option<f64>, min_delta: f64) -> bool {
        match best {
            None => value.is_finite(),
            Some(best) if self.maximize() => value > best + min_delta,
            Some(best) => value < best - min_delta,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAcc => "val_acc",
            Monitor::ValF1 => "val_f1",
        }
    }
}

fn half() -> f64 {
    0.1
}
fn pct_start() -> f64 {
    0.3
}
fn triangle_start() -> f64 {
    0.2
}
fn triangle_peak() -> f64 {
    0.23
}
fn triangle_end() -> f64 {
    0.07
}
fn div_factor() -> f64 {
    25.0
}
fn final_div_factor() -> f64 {
    1e4
}
fn plateau_patience() -> usize {
    10
}
fn val_loss() -> Monitor {
    Monitor::ValLoss
}

/// `schedule = { kind = "cosine" }` in `[train]`. `lr` is the peak (base) rate.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    #[default]
    Constant,
    /// `StepLR`: multiply by `gamma` every `every` epochs.
    Step {
        every: usize,
        #[serde(default = "half")]
        gamma: f64,
    },
    /// `CosineAnnealingLR` over the whole run, updated every batch.
    Cosine {
        #[serde(default)]
        min_lr: f64,
    },
    /// `OneCycleLR` (cosine annealing, two phases), updated every batch.
    OneCycle {
        #[serde(default = "pct_start")]
        pct_start: f64,
        #[serde(default = "div_factor")]
        div_factor: f64,
        #[serde(default = "final_div_factor")]
        final_div_factor: f64,
    },
    /// Linear up from `start * lr` to `lr` at fraction `peak` of the run, then linear
    /// down to `end * lr` (airbench's triangle: 0.2, 0.23, 0.07), updated every batch.
    Triangle {
        #[serde(default = "triangle_start")]
        start: f64,
        #[serde(default = "triangle_peak")]
        peak: f64,
        #[serde(default = "triangle_end")]
        end: f64,
    },
    /// `ReduceLROnPlateau`: multiply by `factor` after `patience` epochs without
    /// improvement of `metric`.
    Plateau {
        #[serde(default = "half")]
        factor: f64,
        #[serde(default = "plateau_patience")]
        patience: usize,
        #[serde(default)]
        min_lr: f64,
        #[serde(default = "val_loss")]
        metric: Monitor,
    },
}

/// What reduce-on-plateau remembers between epochs (part of a resumable checkpoint).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlateauState {
    pub best: Option<f64>,
    pub bad_epochs: usize,
    pub scale: f64,
}

impl Default for PlateauState {
    fn default() -> Self {
        PlateauState { best: None, bad_epochs: 0, scale: 1.0 }
    }
}

impl Schedule {
    /// Rejects settings that cannot work (the caller names the key, `train.schedule`).
    pub fn validate(&self) -> Result<(), String> {
        let bad = |msg: &str| Err(msg.to_string());
        match *self {
            Schedule::Step { every: 0, .. } => bad("`every` must be at least 1 epoch"),
            Schedule::Step { gamma, .. } | Schedule::Plateau { factor: gamma, .. }
                if !(gamma > 0.0 && gamma <= 1.0) =>
            {
                bad("the factor must be in (0, 1]")
            }
            Schedule::OneCycle { pct_start, div_factor, final_div_factor }
                if !(pct_start > 0.0 && pct_start < 1.0 && div_factor >= 1.0 && final_div_factor >= 1.0) =>
            {
                bad("one_cycle needs 0 < pct_start < 1 and div factors >= 1")
            }
            Schedule::Triangle { start, peak, end }
                if !(peak > 0.0
                    && peak < 1.0
                    && start >= 0.0
                    && end >= 0.0
                    && start.is_finite()
                    && end.is_finite()) =>
            {
                bad("triangle needs 0 < peak < 1 and start, end >= 0")
            }
            Schedule::Cosine { min_lr } | Schedule::Plateau { min_lr, .. } if min_lr.is_nan() || min_lr < 0.0 => {
                bad("min_lr must be >= 0")
            }
            _ => Ok(()),
        }
    }

    /// The learning rate at `progress` epochs into a run of `epochs` (fractional:
    /// 2.5 is the middle of the third epoch), before warmup.
    pub fn lr(&self, base: f64, progress: f64, epochs: usize, plateau: &PlateauState) -> f64 {
        let frac = (progress / epochs as f64).clamp(0.0, 1.0);
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powi((progress.floor() as usize / every) as i32),
            Schedule::Cosine { min_lr } => min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * frac).cos()) / 2.0,
            Schedule::OneCycle { pct_start, div_factor, final_div_factor } => {
                let initial = base / div_factor;
                let last = initial / final_div_factor;
                let anneal =
                    |from: f64, to: f64, t: f64| to + (from - to) * (1.0 + (std::f64::consts::PI * t).cos()) / 2.0;
                if frac < pct_start {
                    anneal(initial, base, frac / pct_start)
                } else {
                    anneal(base, last, (frac - pct_start) / (1.0 - pct_start))
                }
            }
            Schedule::Triangle { start, peak, end } => {
                if frac < peak {
                    base * (start + (1.0 - start) * frac / peak)
                } else {
                    base * (1.0 + (end - 1.0) * (frac - peak) / (1.0 - peak))
                }
            }
            Schedule::Plateau { min_lr, .. } => (base * plateau.scale).max(min_lr),
        }
    }

    /// Reduce-on-plateau's end-of-epoch update; other schedules ignore it.
    pub fn end_epoch(&self, state: &mut PlateauState, value: f64) {
        let Schedule::Plateau { factor, patience, metric, .. } = *self else { return };
        // PyTorch's default threshold: a relative improvement of 1e-4.
        let delta = state.best.map_or(0.0, |b| b.abs() * 1e-4);
        if metric.improves(value, state.best, delta) {
            state.best = Some(value);
            state.bad_epochs = 0;
        } else {
            state.bad_epochs += 1;
            if state.bad_epochs > patience {
                state.scale *= factor;
                state.bad_epochs = 0;
            }
        }
    }

    /// The metric reduce-on-plateau watches.
    pub fn plateau_metric(&self) -> Option<Monitor> {
        match *self {
            Schedule::Plateau { metric, .. } => Some(metric),
            _ => None,
        }
    }
}

/// Linear warmup factor at `progress` epochs with `warmup` warmup epochs.
pub fn warmup_factor(progress: f64, warmup: f64) -> f64 {
    if warmup <= 0.0 {
        1.0
    } else {
        (progress / warmup).clamp(0.0, 1.0).max(1e-3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_follow_pytorch() {
        let p = PlateauState::default();
        assert_eq!(Schedule::Constant.lr(0.1, 7.3, 10, &p), 0.1);
        let step = Schedule::Step { every: 3, gamma: 0.1 };
        assert!((step.lr(1.0, 2.9, 10, &p) - 1.0).abs() < 1e-12);
        assert!((step.lr(1.0, 3.0, 10, &p) - 0.1).abs() < 1e-12);
        assert!((step.lr(1.0, 6.5, 10, &p) - 0.01).abs() < 1e-12);
        let cos = Schedule::Cosine { min_lr: 0.01 };
        assert!((cos.lr(1.0, 0.0, 10, &p) - 1.0).abs() < 1e-12);
        assert!((cos.lr(1.0, 5.0, 10, &p) - 0.505).abs() < 1e-12);
        assert!((cos.lr(1.0, 10.0, 10, &p) - 0.01).abs() < 1e-12);
        let one = Schedule::OneCycle { pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 };
        assert!((one.lr(1.0, 0.0, 10, &p) - 0.04).abs() < 1e-12);
        assert!((one.lr(1.0, 3.0, 10, &p) - 1.0).abs() < 1e-12);
        assert!((one.lr(1.0, 10.0, 10, &p) - 0.04 / 1e4).abs() < 1e-15);
        let tri = Schedule::Triangle { start: 0.2, peak: 0.25, end: 0.07 };
        assert!((tri.lr(2.0, 0.0, 10, &p) - 0.4).abs() < 1e-12);
        assert!((tri.lr(2.0, 1.25, 10, &p) - 1.2).abs() < 1e-12, "half way up");
        assert!((tri.lr(2.0, 2.5, 10, &p) - 2.0).abs() < 1e-12);
        assert!((tri.lr(2.0, 10.0, 10, &p) - 0.14).abs() < 1e-12);
        assert!(Schedule::Triangle { start: 0.2, peak: 1.0, end: 0.0 }.validate().is_err());
        assert_eq!(warmup_factor(0.5, 2.0), 0.25);
        assert_eq!(warmup_factor(3.0, 2.0), 1.0);
        assert_eq!(warmup_factor(3.0, 0.0), 1.0);
    }

    #[test]
    fn plateau_reduces_after_patience() {
        let s = Schedule::Plateau { factor: 0.5, patience: 2, min_lr: 0.2, metric: Monitor::ValLoss };
        let mut st = PlateauState::default();
        for loss in [1.0, 0.9, 0.95, 0.91] {
            s.end_epoch(&mut st, loss);
        }
        assert_eq!(st.scale, 1.0, "two bad epochs are within patience");
        s.end_epoch(&mut st, 0.92);
        assert_eq!(st.scale, 0.5);
        assert_eq!(s.lr(1.0, 0.0, 1, &st), 0.5);
        st.scale = 0.01;
        assert_eq!(s.lr(1.0, 0.0, 1, &st), 0.2, "never below min_lr");
    }

    #[test]
    fn monitors_know_their_direction() {
        assert!(Monitor::ValLoss.improves(0.5, Some(0.6), 0.0));
        assert!(!Monitor::ValLoss.improves(0.59, Some(0.6), 0.05));
        assert!(Monitor::ValF1.improves(0.7, Some(0.6), 0.0));
        assert!(Monitor::ValAcc.improves(0.1, None, 0.0));
    }
}
