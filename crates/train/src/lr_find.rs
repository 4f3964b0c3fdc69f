//! Smith's learning-rate range test as fastai's `Learner.lr_find` runs it: train from
//! the config's starting weights with the learning rate growing exponentially from
//! `start` to `end` over `steps` batches (`lr_i = start * (end / start)^(i / steps)`),
//! record the loss smoothed as fastai's recorder does (an exponential moving average
//! with beta 0.98, debiased), and stop once it exceeds 4x its best (divergence). The
//! suggestions are fastai's, computed on the points from `steps / 10` up to the last 5:
//! `valley` (its default: 2/3 of the way down the longest decreasing run),
//! `steep` (the steepest fall per log-lr) and `minimum` (a tenth of the lowest loss's
//! rate). The learner is built for the test and thrown away afterwards: no run folder
//! is written and nothing of the config's training changes.

use cnnlab_augment::{Op, Pipeline};
use cnnlab_data::{Imbalance, Splits, Variant};
use cnnlab_models::{ModelConfig, ModelKind};
use rand::seq::SliceRandom;
use tch::Tensor;

use crate::batch::{gather, EpochAugment};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fit::{resolve_device, start_learner};
use crate::learner::StepAt;
use crate::seed;

/// The range test's settings (fastai's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrFindConfig {
    pub start: f64,
    pub end: f64,
    pub steps: usize,
    /// Stop when the smoothed loss passes 4x its best.
    pub stop_div: bool,
}

impl Default for LrFindConfig {
    fn default() -> Self {
        LrFindConfig { start: 1e-7, end: 10.0, steps: 100, stop_div: true }
    }
}

/// What the range test recorded and suggests.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFinding {
    /// A one-vs-rest config's: the class whose "class vs the rest" network was tested.
    pub member: Option<String>,
    /// The learning rate of each step taken.
    pub lrs: Vec<f64>,
    /// The smoothed training loss after each step.
    pub losses: Vec<f64>,
    /// The batch loss of each step, unsmoothed.
    pub raw: Vec<f64>,
    /// Whether it stopped early because the loss diverged (or became non-finite).
    pub diverged: bool,
    /// fastai's suggestions; `None` when too few points were recorded.
    pub valley: Option<f64>,
    pub steep: Option<f64>,
    pub minimum: Option<f64>,
}

/// The smoothing of fastai's `AvgSmoothLoss`.
const BETA: f64 = 0.98;

/// Runs the range test on the training split of `splits` with the config's model,
/// augmentation, optimizer, batch size and gradient accumulation (a step is one
/// optimizer step of `accumulate * batch_size` images, as `train` takes), loss
/// settings and device. A one-vs-rest config tests one member network (see
/// [`LrFinding::member`]), which is what `train` trains at `lr`.
pub fn lr_find(
    splits: &Splits,
    imbalance: &Imbalance,
    augment: &[Op],
    model: &ModelConfig,
    cfg: &TrainConfig,
    find: &LrFindConfig,
) -> Result<LrFinding> {
    if !(find.start > 0.0 && find.end > find.start && find.end.is_finite()) || find.steps == 0 {
        return Err(Error::invalid(
            "lr-find",
            format!("needs 0 < start < end and steps >= 1, got {} to {} in {}", find.start, find.end, find.steps),
        ));
    }
    let device = resolve_device(cfg.device)?;
    if splits.train.is_empty() {
        return Err(Error::EmptySplit { split: "train" });
    }
    // One-vs-rest trains one binary network per class at the config's rate: the range
    // test is that of the largest class's network (the least lopsided of them).
    let (member, binary, standard);
    let (data, model) = if model.kind == ModelKind::OneVsRest {
        let counts = splits.train.class_counts();
        let c = (0..counts.len()).max_by_key(|&c| (counts[c], std::cmp::Reverse(c))).unwrap_or(0);
        member = Some(splits.train.classes[c].clone());
        binary = crate::ovr::binary(&splits.train, c);
        standard = ModelConfig { kind: ModelKind::Standard, ..model.clone() };
        (&binary, &standard)
    } else {
        member = None;
        (&splits.train, model)
    };
    let (mut learner, norm) = start_learner(data, imbalance, model, cfg, device)?;
    // fastai's lr_find on a fine-tuning learner runs with the body frozen.
    learner.freeze_backbone(cfg.freeze_epochs > 0);
    let pipeline = crate::batch::training_pipeline(augment, seed::augment(cfg.seed), data.shape)?;
    let copies = Pipeline::new(vec![], seed::copies(cfg.seed))?;

    let mut record = LrFinding {
        member,
        lrs: vec![],
        losses: vec![],
        raw: vec![],
        diverged: false,
        valley: None,
        steep: None,
        minimum: None,
    };
    let (mut avg, mut best) = (0.0, f64::INFINITY);
    let mut epoch = 1;
    // A step is one optimizer step, as in training: `accumulate` batches of
    // `batch_size`, each loss weighted by its share of the step's samples.
    let per_step = cfg.batch_size * cfg.accumulate.max(1);
    'epochs: loop {
        let mut plan: Vec<(usize, Variant)> = (0..data.len()).map(|i| (i, Variant::Original)).collect();
        plan.shuffle(&mut seed::shuffle(cfg.seed, epoch));
        let augment = EpochAugment { regular: &pipeline, copies: &copies, epoch: epoch as u64 };
        for (g, group) in plan.chunks(per_step).enumerate() {
            let i = record.lrs.len();
            if i >= find.steps {
                break 'epochs;
            }
            let lr = find.start * (find.end / find.start).powf(i as f64 / find.steps as f64);
            learner.opt.zero_grad();
            let mut loss = 0.0;
            for (j, chunk) in group.chunks(cfg.batch_size).enumerate() {
                let b = g * cfg.accumulate.max(1) + j;
                let batch = gather(data, chunk, b * cfg.batch_size, Some(augment));
                let xs = norm.to_tensor(&batch.pixels);
                let ys = Tensor::from_slice(&batch.labels).to_device(device);
                seed::dropout(cfg.seed, epoch, b);
                let at = StepAt { epoch, batch: b, total_steps: find.steps };
                let weight = chunk.len() as f64 / group.len() as f64;
                match learner.accumulate(at, &xs, &ys, weight) {
                    Ok(stats) => loss += stats.loss * weight,
                    Err(Error::NonFinite { .. }) => {
                        record.diverged = true;
                        break 'epochs;
                    }
                    Err(e) => return Err(e),
                }
            }
            let at = StepAt { epoch, batch: g, total_steps: find.steps };
            learner.apply(at, lr)?;
            avg = BETA * avg + (1.0 - BETA) * loss;
            let smooth = avg / (1.0 - BETA.powi(i as i32 + 1));
            record.lrs.push(lr);
            record.losses.push(smooth);
            record.raw.push(loss);
            best = best.min(smooth);
            if find.stop_div && smooth > 4.0 * best {
                record.diverged = true;
                break 'epochs;
            }
        }
        epoch += 1;
    }
    let n = record.lrs.len();
    let from = find.steps / 10;
    if n >= from + 5 + 2 {
        let (lrs, losses) = (&record.lrs[from..n - 5], &record.losses[from..n - 5]);
        record.valley = Some(valley(lrs, losses));
        record.steep = Some(steep(lrs, losses));
        record.minimum = Some(minimum(lrs, losses));
    }
    Ok(record)
}

/// fastai's `valley`: the longest run of decreasing losses (a longest decreasing
/// subsequence ending at each point), and the rate 1/3 + 1/6 of the way along it.
pub fn valley(lrs: &[f64], losses: &[f64]) -> f64 {
    let n = losses.len();
    // fastai's arithmetic, in signed integers: `max_start` is -1 when the longest run
    // starts at the first point, and a negative index counts from the end, as Python's.
    let (mut max_start, mut max_end) = (0isize, 0usize);
    let mut lds = vec![1usize; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lds[i] < lds[j] + 1 {
                lds[i] = lds[j] + 1;
            }
            if lds[max_end] < lds[i] {
                max_end = i;
                max_start = max_end as isize - lds[max_end] as isize;
            }
        }
    }
    let sections = (max_end as isize - max_start) as f64 / 3.0;
    let idx = max_start + sections as isize + (sections / 2.0) as isize;
    lrs[if idx < 0 { (n as isize + idx) as usize } else { idx as usize }]
}

/// fastai's `steep`: the rate where the loss falls fastest per unit of ln(lr).
pub fn steep(lrs: &[f64], losses: &[f64]) -> f64 {
    let grads = (1..losses.len()).map(|i| (losses[i] - losses[i - 1]) / (lrs[i].ln() - lrs[i - 1].ln()));
    let at = grads.enumerate().fold((0, f64::INFINITY), |best, (i, g)| if g < best.1 { (i, g) } else { best }).0;
    lrs[at]
}

/// fastai's `minimum`: a tenth of the rate with the lowest loss.
pub fn minimum(lrs: &[f64], losses: &[f64]) -> f64 {
    let at = losses.iter().enumerate().fold(0, |best, (i, &l)| if l < losses[best] { i } else { best });
    lrs[at] / 10.0
}
