//! When to stop a trial early: after each epoch a trial reports its metric, and the
//! pruner says whether to go on. The rules are Optuna's (5.1), decision for decision,
//! which `tests/tune_golden.py` records and `pruners_decide_as_optuna` replays:
//! `SuccessiveHalvingPruner` (asynchronous successive halving, ASHA's rule) and
//! `MedianPruner`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which way the metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Maximize,
    Minimize,
}

impl Direction {
    /// `val_loss` is minimised, every other metric (`val_acc`, `val_f1_macro`) maximised.
    pub fn of_metric(metric: &str) -> Self {
        if metric.ends_with("loss") {
            Direction::Minimize
        } else {
            Direction::Maximize
        }
    }

    /// Whether `a` is better than `b` (NaN never is).
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        }
    }
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    Running,
    Complete,
    Pruned,
    Failed,
}

/// What the pruners read of a trial: its metric per epoch (1-based), and for
/// successive halving the value it had at each rung it reached.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    pub state: TrialState,
    pub values: BTreeMap<usize, f64>,
    pub rungs: Vec<f64>,
}

impl TrialRecord {
    pub fn new() -> Self {
        TrialRecord { state: TrialState::Running, values: BTreeMap::new(), rungs: Vec::new() }
    }

    /// The trial's best value over its epochs (NaN when all are NaN or none).
    pub fn best(&self, direction: Direction) -> f64 {
        self.values.values().copied().filter(|v| !v.is_nan()).fold(f64::NAN, |best, v| {
            if best.is_nan() || direction.better(v, best) {
                v
            } else {
                best
            }
        })
    }
}

impl Default for TrialRecord {
    fn default() -> Self {
        Self::new()
    }
}

/// `[tune] pruner`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pruner {
    /// Every trial trains all its epochs.
    None,
    /// Optuna's `MedianPruner(n_startup_trials, n_warmup_steps)`: stop a trial whose
    /// best value so far is worse than the median of the completed trials' values at
    /// the same epoch, once `startup_trials` have completed and after `warmup_epochs`.
    Median { startup_trials: usize, warmup_epochs: usize },
    /// Optuna's `SuccessiveHalvingPruner(min_resource, reduction_factor,
    /// min_early_stopping_rate)`: rungs at `min_epochs * reduction^(rate + r)` epochs; a
    /// trial reaching a rung goes on only if its value there is in the best
    /// `1 / reduction` of the values every trial had at that rung (the first few, while
    /// fewer than `reduction` have reached it, only if it is the best).
    SuccessiveHalving { min_epochs: usize, reduction: usize, min_early_stopping_rate: u32 },
}

impl Pruner {
    /// The epochs at which a rung ends, up to `max_epochs` (successive halving only):
    /// where a worker can stop a trial and later resume it.
    pub fn rungs(&self, max_epochs: usize) -> Vec<usize> {
        let Pruner::SuccessiveHalving { min_epochs, reduction, min_early_stopping_rate } = *self else {
            return vec![];
        };
        let mut out = Vec::new();
        let mut r = 0;
        loop {
            let step = rung_step(min_epochs, reduction, min_early_stopping_rate + r);
            if step >= max_epochs || step == 0 {
                break;
            }
            out.push(step);
            r += 1;
        }
        out
    }

    /// The epoch a trial that has done `done` epochs (of `max_epochs`) trains to before
    /// the pruner must be asked again: the next rung for successive halving (the
    /// pruner only decides there), the next epoch for the median rule, the end without one.
    pub fn stops(&self, done: usize, max_epochs: usize) -> usize {
        match self {
            Pruner::None => max_epochs,
            Pruner::Median { .. } => (done + 1).min(max_epochs),
            Pruner::SuccessiveHalving { .. } => {
                self.rungs(max_epochs).into_iter().find(|&r| r > done).unwrap_or(max_epochs)
            }
        }
    }

    /// Whether trial `k` of `trials`, which has just reported its value at its latest
    /// epoch, stops here. Successive halving records the values at the rungs it
    /// passes in `trials[k].rungs` (as Optuna's `completed_rung_N` attributes).
    pub fn should_prune(&self, trials: &mut [TrialRecord], k: usize, direction: Direction) -> bool {
        let Some((&step, &value)) = trials[k].values.iter().next_back() else { return false };
        match *self {
            Pruner::None => false,
            Pruner::Median { startup_trials, warmup_epochs } => {
                median_prunes(trials, k, step, direction, startup_trials, warmup_epochs)
            }
            Pruner::SuccessiveHalving { min_epochs, reduction, min_early_stopping_rate } => {
                let mut rung = trials[k].rungs.len();
                loop {
                    let promotion = rung_step(min_epochs, reduction, min_early_stopping_rate + rung as u32);
                    if step < promotion {
                        return false;
                    }
                    if value.is_nan() {
                        return true;
                    }
                    // The other trials' values at this rung, and this one's.
                    let mut competing: Vec<f64> = trials
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != k)
                        .filter_map(|(_, t)| t.rungs.get(rung).copied())
                        .collect();
                    competing.push(value);
                    trials[k].rungs.push(value);
                    if !promotable(value, &mut competing, reduction, direction) {
                        return true;
                    }
                    rung += 1;
                }
            }
        }
    }
}

fn rung_step(min_epochs: usize, reduction: usize, exponent: u32) -> usize {
    min_epochs.saturating_mul(reduction.saturating_pow(exponent))
}

/// Optuna's `_is_trial_promotable_to_next_rung`.
fn promotable(value: f64, competing: &mut [f64], reduction: usize, direction: Direction) -> bool {
    let index = (competing.len() / reduction).max(1) - 1;
    competing.sort_by(f64::total_cmp);
    match direction {
        Direction::Maximize => value >= competing[competing.len() - 1 - index],
        Direction::Minimize => value <= competing[index],
    }
}

fn median_prunes(
    trials: &[TrialRecord],
    k: usize,
    step: usize,
    direction: Direction,
    startup_trials: usize,
    warmup_epochs: usize,
) -> bool {
    let complete: Vec<&TrialRecord> = trials.iter().filter(|t| t.state == TrialState::Complete).collect();
    if complete.is_empty() || complete.len() < startup_trials || step < warmup_epochs {
        return false;
    }
    let best = trials[k].best(direction);
    if best.is_nan() {
        return true;
    }
    let mut at: Vec<f64> =
        complete.iter().filter_map(|t| t.values.get(&step).copied()).filter(|v| !v.is_nan()).collect();
    if at.is_empty() {
        return false;
    }
    at.sort_by(f64::total_cmp);
    // numpy's percentile (linear interpolation) at 50: the median.
    let mid = (at.len() - 1) as f64 / 2.0;
    let (lo, hi) = (at[mid.floor() as usize], at[mid.ceil() as usize]);
    let median = lo + (hi - lo) * (mid - mid.floor());
    direction.better(median, best)
}
