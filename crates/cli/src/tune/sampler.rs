//! Where the next trial looks: `[tune] sampler`. Random, Sobol (`super::sobol`) and
//! grid search, and the
//! tree-structured Parzen estimator (TPE, Bergstra et al. 2011) as Optuna 5.1's
//! `TPESampler` runs it by default for one objective (multivariate, Falkner et al.
//! 2018's joint kernels): the first 10 trials drawn at random, then the finished
//! trials split into the best `gamma(n) = min(ceil(0.1 n), 25)` and the rest, a
//! Parzen mixture fitted to each part (one kernel per trial over all parameters,
//! truncated normals and categoricals, plus a prior), and of 24 candidates drawn from
//! the good part's mixture the one with the highest `l(x) / g(x)`. The tests compare its regret on synthetic objectives with Optuna's
//! (`tests/tune_golden.py`).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::space::{Dist, Space, Value};

/// `[tune] sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SamplerKind {
    Random,
    Sobol,
    Grid,
    Tpe,
}

/// A finished trial as the samplers see it: its values and its metric, already
/// turned so that lower is better (`None` for a failed trial). `epochs` orders pruned
/// trials (further is better) after the complete ones.
#[derive(Debug, Clone)]
pub struct Observation {
    pub params: BTreeMap<String, Value>,
    pub loss: Option<f64>,
    pub complete: bool,
    pub epochs: usize,
}

/// Optuna's `n_startup_trials` and `n_ei_candidates`.
const STARTUP_TRIALS: usize = 10;
const EI_CANDIDATES: usize = 24;
/// The prior's weight in each Parzen mixture (Optuna's `prior_weight`).
const PRIOR_WEIGHT: f64 = 1.0;

/// The values of trial `index` (0-based) of a study with `seed`, given what the
/// finished trials found. Deterministic in (seed, index, observations).
pub fn suggest(
    kind: SamplerKind,
    space: &Space,
    seed: u64,
    index: usize,
    seen: &[Observation],
) -> BTreeMap<String, Value> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    match kind {
        SamplerKind::Random => space.iter().map(|(k, d)| (k.clone(), random_value(d, &mut rng))).collect(),
        SamplerKind::Sobol => sobol_point(space, seed, index),
        SamplerKind::Grid => grid_point(space, index),
        SamplerKind::Tpe => {
            let usable: Vec<&Observation> = seen.iter().filter(|o| o.loss.is_some_and(f64::is_finite)).collect();
            if usable.len() < STARTUP_TRIALS {
                return space.iter().map(|(k, d)| (k.clone(), random_value(d, &mut rng))).collect();
            }
            let (below, above) = split(&usable);
            tpe_point(space, &below, &above, &mut rng)
        }
    }
}

/// How many points the grid has (every `choice`'s values; a continuous range gets
/// `GRID_STEPS` evenly spaced, ends included).
pub fn grid_size(space: &Space) -> usize {
    space.values().map(grid_steps).product()
}

const GRID_STEPS: usize = 5;

fn grid_steps(d: &Dist) -> usize {
    match d {
        Dist::Choice(values) => values.len(),
        Dist::Int { low, high } => ((high - low + 1) as usize).min(GRID_STEPS),
        _ => GRID_STEPS,
    }
}

/// Point `index` of the grid, the last parameter varying fastest (wraps around).
fn grid_point(space: &Space, index: usize) -> BTreeMap<String, Value> {
    let mut rest = index % grid_size(space).max(1);
    let mut out = BTreeMap::new();
    for (k, d) in space.iter().rev() {
        let n = grid_steps(d);
        let i = rest % n;
        rest /= n;
        let t = if n > 1 { i as f64 / (n - 1) as f64 } else { 0.5 };
        let v = match d {
            Dist::Choice(values) => Value::Choice(i, values[i].clone()),
            Dist::Int { low, high } => Value::Int(low + ((high - low) as f64 * t).round() as i64),
            Dist::Uniform { low, high } => Value::Float(low + (high - low) * t),
            Dist::LogUniform { low, high } => Value::Float((low.ln() + (high.ln() - low.ln()) * t).exp()),
        };
        out.insert(k.clone(), v);
    }
    out
}

/// Trial `index` of a Sobol study: the sequence's point `index` (shifted by `seed`) on
/// the space, one coordinate per key in key order.
fn sobol_point(space: &Space, seed: u64, index: usize) -> BTreeMap<String, Value> {
    let u = super::sobol::point(index as u32, space.len(), Some(seed));
    space.iter().zip(u).map(|((k, d), u)| (k.clone(), from_unit(d, u))).collect()
}

/// Where `u` in [0, 1) lands in `d`, as Optuna's `QMCSampler` maps it: linearly (on the
/// log axis for a log range), an integer range widened by half a step each side and
/// its steps from `low` rounded half up, a choice among `n` by `floor(u n)`.
pub fn from_unit(d: &Dist, u: f64) -> Value {
    match d {
        Dist::Uniform { low, high } => Value::Float((low + u * (high - low)).clamp(*low, *high)),
        Dist::LogUniform { low, high } => {
            let (a, b) = (low.ln(), high.ln());
            Value::Float((a + u * (b - a)).exp().clamp(*low, *high))
        }
        Dist::Int { low, high } => {
            let (a, b) = (*low as f64 - 0.5, *high as f64 + 0.5);
            let steps = (a + u * (b - a) - *low as f64 + 0.5).floor() as i64;
            Value::Int((low + steps).clamp(*low, *high))
        }
        Dist::Choice(values) => {
            let i = ((u * values.len() as f64) as usize).min(values.len() - 1);
            Value::Choice(i, values[i].clone())
        }
    }
}

fn random_value(d: &Dist, rng: &mut ChaCha8Rng) -> Value {
    match d {
        Dist::Uniform { low, high } => Value::Float(rng.gen_range(*low..=*high)),
        Dist::LogUniform { low, high } => Value::Float(rng.gen_range(low.ln()..=high.ln()).exp()),
        Dist::Int { low, high } => Value::Int(rng.gen_range(*low..=*high)),
        Dist::Choice(values) => {
            let i = rng.gen_range(0..values.len());
            Value::Choice(i, values[i].clone())
        }
    }
}

/// The best `gamma(n)` observations and the rest: complete trials by loss, then
/// pruned ones by epochs reached (more first) and loss.
fn split<'a>(seen: &[&'a Observation]) -> (Vec<&'a Observation>, Vec<&'a Observation>) {
    let mut order: Vec<&Observation> = seen.to_vec();
    order.sort_by(|a, b| {
        b.complete
            .cmp(&a.complete)
            .then(if a.complete { std::cmp::Ordering::Equal } else { b.epochs.cmp(&a.epochs) })
            .then(a.loss.unwrap_or(f64::INFINITY).total_cmp(&b.loss.unwrap_or(f64::INFINITY)))
    });
    let gamma = (seen.len() as f64 * 0.1).ceil().min(25.0) as usize;
    let mut above = order.split_off(gamma.max(1));
    // Back in trial order (the Parzen weights favour recent trials).
    let position = |o: &&Observation| seen.iter().position(|s| std::ptr::eq(*s, *o)).unwrap_or(0);
    order.sort_by_key(position);
    above.sort_by_key(position);
    (order, above)
}

/// How a parameter lives inside the TPE: a number on its internal axis (the log of a
/// log-uniform value; an integer widened by half a step each side), or a choice.
#[derive(Debug, Clone, Copy)]
enum Axis {
    Num { low: f64, high: f64, log: bool, int: bool },
    Cat { n: usize },
}

impl Axis {
    fn of(d: &Dist) -> Self {
        match *d {
            Dist::Uniform { low, high } => Axis::Num { low, high, log: false, int: false },
            Dist::LogUniform { low, high } => Axis::Num { low: low.ln(), high: high.ln(), log: true, int: false },
            Dist::Int { low, high } => {
                Axis::Num { low: low as f64 - 0.5, high: high as f64 + 0.5, log: false, int: true }
            }
            Dist::Choice(ref values) => Axis::Cat { n: values.len() },
        }
    }

    /// A value on this axis (a choice as its index).
    fn x(self, v: &Value) -> f64 {
        match (self, v) {
            (Axis::Num { log: true, .. }, Value::Float(f)) => f.ln(),
            (_, Value::Float(f)) => *f,
            (_, Value::Int(i)) => *i as f64,
            (_, Value::Choice(i, _)) => *i as f64,
        }
    }

    fn value(self, d: &Dist, x: f64) -> Value {
        match (self, d) {
            (Axis::Cat { .. }, Dist::Choice(values)) => {
                let i = (x as usize).min(values.len() - 1);
                Value::Choice(i, values[i].clone())
            }
            (Axis::Num { low, high, int: true, .. }, _) => Value::Int(x.round().clamp(low + 0.5, high - 0.5) as i64),
            (Axis::Num { low, high, log: true, .. }, _) => Value::Float(x.exp().clamp(low.exp(), high.exp())),
            (Axis::Num { low, high, .. }, _) => Value::Float(x.clamp(low, high)),
            (Axis::Cat { .. }, _) => unreachable!("a choice axis belongs to a choice"),
        }
    }
}

/// Optuna 5.1's default TPE for one objective (multivariate): the candidates are
/// whole points drawn from the good trials' joint mixture, scored by `l(x) / g(x)`.
fn tpe_point(
    space: &Space,
    below: &[&Observation],
    above: &[&Observation],
    rng: &mut ChaCha8Rng,
) -> BTreeMap<String, Value> {
    let axes: Vec<(&String, &Dist, Axis)> = space.iter().map(|(k, d)| (k, d, Axis::of(d))).collect();
    let points = |part: &[&Observation]| -> Vec<Vec<f64>> {
        part.iter()
            .filter_map(|o| axes.iter().map(|(k, _, a)| o.params.get(*k).map(|v| a.x(v))).collect::<Option<Vec<f64>>>())
            .collect()
    };
    let kinds: Vec<Axis> = axes.iter().map(|(_, _, a)| *a).collect();
    let l = Mixture::new(&kinds, &points(below));
    let g = Mixture::new(&kinds, &points(above));
    let mut best = (f64::NEG_INFINITY, Vec::new());
    for _ in 0..EI_CANDIDATES {
        let x = l.sample(rng);
        let score = l.log_pdf(&x) - g.log_pdf(&x);
        if score > best.0 || best.1.is_empty() {
            best = (score, x);
        }
    }
    axes.iter().zip(best.1).map(|((k, d, a), x)| ((*k).clone(), a.value(d, x))).collect()
}

/// A Parzen mixture over whole points: one kernel per observation and the prior, each
/// kernel a product over the axes (a truncated normal, or a categorical).
struct Mixture {
    weights: Vec<f64>,
    axes: Vec<Kernels>,
}

enum Kernels {
    Num(Parzen),
    /// Per kernel, the choices' probabilities.
    Cat(Vec<Vec<f64>>),
}

impl Mixture {
    fn new(kinds: &[Axis], points: &[Vec<f64>]) -> Self {
        let n = points.len();
        let axes = kinds
            .iter()
            .enumerate()
            .map(|(d, kind)| match *kind {
                Axis::Num { low, high, .. } => {
                    Kernels::Num(Parzen::new(&points.iter().map(|p| p[d]).collect::<Vec<_>>(), low, high))
                }
                Axis::Cat { n: choices } => {
                    // Optuna's `_calculate_categorical_distributions`.
                    let kernels = n + 1;
                    let mut rows = vec![vec![PRIOR_WEIGHT / kernels as f64; choices]; kernels];
                    for (row, p) in rows.iter_mut().zip(points) {
                        row[p[d] as usize] += 1.0;
                    }
                    rows[n] = vec![1.0 / choices as f64; choices];
                    for row in &mut rows {
                        let total: f64 = row.iter().sum();
                        row.iter_mut().for_each(|w| *w /= total);
                    }
                    Kernels::Cat(rows)
                }
            })
            .collect();
        let mut weights = default_weights(n);
        weights.push(PRIOR_WEIGHT);
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        Mixture { weights, axes }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> Vec<f64> {
        let k = pick(&self.weights, rng);
        self.axes
            .iter()
            .map(|axis| match axis {
                Kernels::Num(p) => p.sample_from(k, rng),
                Kernels::Cat(rows) => pick(&rows[k], rng) as f64,
            })
            .collect()
    }

    fn log_pdf(&self, x: &[f64]) -> f64 {
        let terms: Vec<f64> = (0..self.weights.len())
            .map(|k| {
                let mut log = self.weights[k].ln();
                for (axis, &v) in self.axes.iter().zip(x) {
                    log += match axis {
                        Kernels::Num(p) => p.log_pdf_of(k, v),
                        Kernels::Cat(rows) => rows[k][v as usize].ln(),
                    };
                }
                log
            })
            .collect();
        let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if top == f64::NEG_INFINITY {
            return f64::NEG_INFINITY;
        }
        top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
    }
}

/// An index drawn with probabilities `weights` (summing to 1).
fn pick(weights: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let mut u = rng.gen::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// One axis of a mixture: a normal per observation truncated to `[low, high]`, its
/// bandwidth the larger gap to its neighbours (the outermost ones' inner gap: Optuna's
/// `consider_endpoints = False`) clipped to [width / min(100, n + 2), width] (the
/// "magic clip"), and the prior's (centre, whole width) last, as Optuna 5.1's
/// `_ParzenEstimator`.
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    low: f64,
    high: f64,
}

impl Parzen {
    fn new(xs: &[f64], low: f64, high: f64) -> Self {
        let n = xs.len();
        let mut mus: Vec<f64> = xs.to_vec();
        let width = high - low;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        // The sorted observations with the bounds at both ends.
        let mut ends = Vec::with_capacity(n + 2);
        ends.push(low);
        ends.extend(order.iter().map(|&i| mus[i]));
        ends.push(high);
        let mut sorted: Vec<f64> = (1..=n).map(|p| (ends[p] - ends[p - 1]).max(ends[p + 1] - ends[p])).collect();
        if n >= 2 {
            sorted[0] = ends[2] - ends[1];
            sorted[n - 1] = ends[n] - ends[n - 1];
        }
        let min_sigma = width / (100.0f64).min(2.0 + n as f64);
        let mut sigmas = vec![0.0; n];
        for (pos, &i) in order.iter().enumerate() {
            sigmas[i] = sorted[pos].clamp(min_sigma, width);
        }
        mus.push((low + high) / 2.0);
        sigmas.push(width);
        Parzen { mus, sigmas, low, high }
    }

    /// A draw from kernel `k` inside the bounds (by rejection; each kernel keeps
    /// some mass there).
    fn sample_from(&self, k: usize, rng: &mut ChaCha8Rng) -> f64 {
        for _ in 0..100 {
            let x = self.mus[k] + self.sigmas[k] * normal(rng);
            if (self.low..=self.high).contains(&x) {
                return x;
            }
        }
        self.mus[k].clamp(self.low, self.high)
    }

    fn log_pdf_of(&self, k: usize, x: f64) -> f64 {
        let (mu, sigma) = (self.mus[k], self.sigmas[k]);
        let z = (x - mu) / sigma;
        let mass = (phi((self.high - mu) / sigma) - phi((self.low - mu) / sigma)).max(1e-300);
        -0.5 * z * z - (sigma * (2.0 * std::f64::consts::PI).sqrt()).ln() - mass.ln()
    }
}

/// Optuna's `default_weights`: ones up to 25 observations, else a ramp from 1/n up to
/// 1 over the oldest n - 25 and ones for the newest 25.
fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// The standard normal CDF.
fn phi(z: f64) -> f64 {
    0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
