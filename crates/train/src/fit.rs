//! The training loop as a recipe: start or resume, then for each epoch run its
//! batches, evaluate, let the monitor decide; then the test pass. Each step is a
//! function of its own module: [`Learner`] steps, `monitor` watches, `checkpoint`
//! saves, `evaluate` scores, [`RunDir`] writes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cnnlab_augment::{Fill, Op, Pipeline};
use cnnlab_data::{plan_counts, Dataset, Imbalance, Splits, Variant};
use cnnlab_models::{ModelConfig, ModelKind, Network, Shape};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use tch::{Device, Tensor};

use crate::batch::{for_each_batch, EpochAugment, Normalizer};
use crate::checkpoint::{self, EpochTally, Position, Progress};
use crate::config::{DeviceChoice, Feed, TrainConfig};
use crate::error::{Error, Result};
use crate::evaluate::{evaluate, evaluate_tta, write_test_results, RunFacts};
use crate::learner::{Learner, StepAt};
use crate::monitor::{self, Control};
use crate::resident::{for_each_device_batch, DeviceFeed};
use crate::run_dir::RunFiles;
use crate::schedule::warmup_factor;
use crate::seed;
use cnnlab_run::{files, EpochRecord, FinalMetrics, RunDir};

/// How to run, beyond the experiment's own settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run folder; created if needed.
    pub out_dir: PathBuf,
    /// No progress bars.
    pub quiet: bool,
    /// Continue from `out_dir/resume.safetensors` when it exists.
    pub resume: bool,
    /// Set (e.g. by a Ctrl-C handler) to stop after the current batch, saving a
    /// resumable checkpoint.
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Train on at most this many batches per epoch (a smoke run of a config).
    pub max_batches: Option<usize>,
    /// Stop after this epoch with a resumable checkpoint and [`Error::Paused`]
    /// (`cnnlab tune`'s pruner decides whether the run goes on).
    pub stop_after_epoch: Option<usize>,
}

/// Picks the device the config asks for.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(Error::NoCuda),
    }
}

/// Trains `model` on `splits.train` with the `imbalance` strategy, evaluating on the
/// validation split (or test, without one) after every epoch, and on test at the end.
/// `model.kind = "one_vs_rest"` trains one binary network per class.
pub fn train(
    splits: &Splits,
    imbalance: &Imbalance,
    augment: &[Op],
    model: &ModelConfig,
    cfg: &TrainConfig,
    opts: &RunOptions,
) -> Result<FinalMetrics> {
    cfg.validate()?;
    for (split, data) in [("train", &splits.train), ("test", &splits.test)] {
        if data.is_empty() {
            return Err(Error::EmptySplit { split });
        }
    }
    // `fit` creates the run folder (one-vs-rest: each member's, inside it).
    if model.kind == ModelKind::OneVsRest {
        return crate::ovr::one_vs_rest(splits, imbalance, augment, model, cfg, opts);
    }
    let fitted = fit(splits, imbalance, augment, model, cfg, opts)?;
    let eval = evaluate_tta(&fitted.learner.net, &splits.test, &fitted.norm, fitted.eval_batch, cfg.tta)?;
    let run = RunDir::new(&opts.out_dir);
    write_test_results(&run, splits, &eval, fitted.facts(cfg, fitted.learner.net.trainable_params()))
}

/// A trained network and what the final evaluation needs.
pub(crate) struct Fitted {
    pub(crate) learner: Learner,
    pub(crate) norm: Normalizer,
    /// The evaluation batch size ([`eval_batch`]).
    pub(crate) eval_batch: usize,
    device: Device,
    progress: Progress,
}

impl Fitted {
    pub(crate) fn facts(&self, cfg: &TrainConfig, trainable_params: i64) -> RunFacts {
        let t = &self.progress.totals;
        RunFacts {
            epochs: t.epochs_run,
            device: self.device,
            trainable_params,
            train_seconds: t.train_seconds,
            images_seen: t.images_seen,
            tta: cfg.tta,
        }
    }
}

/// Everything an epoch needs that stays the same from epoch to epoch.
struct Ctx<'a> {
    splits: &'a Splits,
    imbalance: &'a Imbalance,
    cfg: &'a TrainConfig,
    opts: &'a RunOptions,
    run: RunDir,
    norm: &'a Normalizer,
    device: Device,
    feed: Option<DeviceFeed>,
    pipeline: Pipeline,
    copies: Pipeline,
    eval_batch: usize,
}

/// The training loop proper, resumable. Leaves the trained network in memory.
pub(crate) fn fit(
    splits: &Splits,
    imbalance: &Imbalance,
    augment: &[Op],
    model: &ModelConfig,
    cfg: &TrainConfig,
    opts: &RunOptions,
) -> Result<Fitted> {
    let device = resolve_device(cfg.device)?;
    let run = RunDir::new(&opts.out_dir);
    run.create()?;
    let data = &splits.train;
    let input = Shape::from(data.shape);
    let classes = data.num_classes() as i64;
    let (mut learner, norm) = start_learner(data, imbalance, model, cfg, device)?;
    norm.save(&run.file(files::NORMALIZER))?;
    let feed = match cfg.pipeline {
        Feed::Host => None,
        Feed::Device => Some(DeviceFeed::new(data, augment, device)?),
    };
    let pipeline = crate::batch::training_pipeline(augment, seed::augment(cfg.seed), data.shape)?;
    let copies = Pipeline::new(copy_augmentation(), seed::copies(cfg.seed))?;
    let eval_batch = eval_batch(cfg, model, input, classes);
    let ctx = Ctx { splits, imbalance, cfg, opts, run, norm: &norm, device, feed, pipeline, copies, eval_batch };

    let mut progress = start_or_resume(&ctx, &mut learner)?;
    let mut history = match progress.position.epoch {
        1 => Vec::new(),
        next if ctx.run.has(files::HISTORY) => ctx.run.read_history()?.into_iter().filter(|r| r.epoch < next).collect(),
        _ => Vec::new(),
    };
    ctx.run.write_history(&history)?;
    ctx.run.write_tensorboard(&history, &[])?;
    tracing::info!(
        "training {} ({} trainable params) on {} images of {}x{}x{}, {classes} classes, device {device:?}",
        if model.name.is_empty() { "model" } else { &model.name },
        learner.net.trainable_params(),
        data.len(),
        data.shape.channels,
        data.shape.height,
        data.shape.width,
    );
    while !progress.watch.finished && progress.position.epoch <= cfg.epochs {
        let epoch = progress.position.epoch;
        // fastai's fine_tune: the head alone for `freeze_epochs`, then everything.
        learner.freeze_backbone(epoch <= cfg.freeze_epochs);
        let record = run_epoch(&ctx, &mut learner, &mut progress)?;
        history.push(record.clone());
        ctx.run.write_history(&history)?;
        ctx.run.write_tensorboard(&history, &[])?;
        log_epoch(&ctx, &record);
        let control = monitor::end_epoch(cfg, &ctx.run, &learner, &mut progress.watch, &record)?;
        progress.totals.epochs_run = epoch;
        if control == Control::Stop {
            progress.watch.finished = true;
            monitor::end_training(&ctx.run, &mut learner, epoch == cfg.epochs)?;
        }
        progress.position = Position { epoch: epoch + 1, batches_done: 0 };
        progress.tally = EpochTally::default();
        progress.watch.finished |= epoch == cfg.epochs;
        checkpoint::save(&ctx.run, &learner, &progress)?;
        if !progress.watch.finished && opts.stop_after_epoch.is_some_and(|stop| epoch >= stop) {
            return Err(Error::Paused { epoch });
        }
    }
    Ok(Fitted { learner, norm, eval_batch, device, progress })
}

/// The learner a run (or `lr_find`) starts from, on the training split `data`: the
/// network from `train.seed` with its pretrained weights, whitening fitted, the
/// imbalance strategy's class weights, and the normalizer its inputs take.
pub(crate) fn start_learner(
    data: &Dataset,
    imbalance: &Imbalance,
    model: &ModelConfig,
    cfg: &TrainConfig,
    device: Device,
) -> Result<(Learner, Normalizer)> {
    let input = Shape::from(data.shape);
    let classes = data.num_classes() as i64;
    // Pretrained weights expect the statistics they were trained with.
    let norm = match model.pretrained {
        Some(_) => Normalizer::imagenet(data.shape, device)?,
        None => Normalizer::fit(data, device),
    };
    let weights = imbalance.class_weights(&data.class_counts());
    let learner = Learner::new(model, cfg, (input, classes), weights, device, |net| fit_whitening(net, data, &norm))?;
    Ok((learner, norm))
}

/// What two f32 layer outputs of one evaluation batch may take: a forward pass without
/// gradients holds a layer's input and output at once. At 224x224 the default
/// `eval_batch_size = 500` needed 2 x 1.6 GB for the first conv alone.
const EVAL_MEMORY_BYTES: i64 = 512 << 20;

/// `train.eval_batch_size`, capped so the widest layer's input and output fit in
/// [`EVAL_MEMORY_BYTES`]. Scores do not depend on it (eval mode: no batch statistics).
fn eval_batch(cfg: &TrainConfig, model: &ModelConfig, input: Shape, classes: i64) -> usize {
    let rows = cnnlab_models::plan(model, input, classes).unwrap_or_default();
    let widest = rows.iter().map(|r| r.output.numel()).chain([input.numel()]).max().unwrap_or(1);
    let cap = (EVAL_MEMORY_BYTES / (2 * 4 * widest.max(1))).max(1) as usize;
    if cap < cfg.eval_batch_size {
        tracing::info!(
            "evaluating in batches of {cap} (train.eval_batch_size {}: too large for its layers)",
            cfg.eval_batch_size
        );
    }
    cfg.eval_batch_size.min(cap)
}

/// airbench fits its whitening layer to 5,000 training images.
fn fit_whitening(net: &Network, data: &Dataset, norm: &Normalizer) {
    if !net.has_whitening() {
        return;
    }
    let n = data.len();
    let take = n.min(5000);
    let mut pixels = Vec::with_capacity(take * data.shape.len());
    for k in 0..take {
        pixels.extend_from_slice(data.image(k * n / take));
    }
    data.release((0..take).map(|k| k * n / take));
    net.fit_whitening(&norm.to_tensor(&pixels), 5e-4);
}

/// What an "augmented copy" of the imbalance strategies gets: a moderate random
/// rotation, zoom, flip and brightness change, so copies of a rare image differ.
fn copy_augmentation() -> Vec<Op> {
    vec![
        Op::Rotate { degrees: 15.0, fill: Fill::Reflect, p: 1.0 },
        Op::Zoom { range: 0.1, fill: Fill::Reflect, p: 1.0 },
        Op::Hflip { p: 0.5 },
        Op::Brightness { min: 0.8, max: 1.2, p: 1.0 },
    ]
}

/// Epoch 1 of a new run, or where `resume.safetensors` left off.
fn start_or_resume(ctx: &Ctx<'_>, learner: &mut Learner) -> Result<Progress> {
    if !(ctx.opts.resume && ctx.run.has(files::RESUME)) {
        return Ok(Progress::start());
    }
    let mut progress = checkpoint::load(&ctx.run, learner)?;
    // A run that finished all its epochs trains on when given more (`--epochs`); one
    // that early stopping ended stays ended.
    let stopped_early = ctx.cfg.early_stopping.is_some_and(|es| progress.watch.since_best >= es.patience);
    if progress.watch.finished && progress.position.epoch <= ctx.cfg.epochs && !stopped_early {
        progress.watch.finished = false;
    }
    tracing::info!(
        "resuming {} at epoch {}, batch {} ({} optimizer steps done)",
        ctx.run.path().display(),
        progress.position.epoch,
        progress.position.batches_done,
        learner.opt.steps()
    );
    Ok(progress)
}

/// The samples of `epoch` in training order: the imbalance strategy's plan, shuffled.
fn epoch_plan(ctx: &Ctx<'_>, epoch: usize) -> Vec<(usize, Variant)> {
    let (cfg, labels) = (ctx.cfg, &ctx.splits.train.labels);
    let classes = ctx.splits.train.num_classes();
    let mut plan = ctx.imbalance.plan(labels, classes, epoch as u64, seed::imbalance_plan(cfg.seed));
    if epoch == 1 || !matches!(ctx.imbalance, Imbalance::None | Imbalance::ClassWeights { .. }) {
        tracing::debug!(
            "epoch {epoch}: imbalance strategy {} gives {} samples, per class {:?}",
            ctx.imbalance.name(),
            plan.len(),
            plan_counts(&plan, labels, classes)
        );
    }
    plan.shuffle(&mut seed::shuffle(cfg.seed, epoch));
    if let Some(max) = ctx.opts.max_batches {
        plan.truncate(max.max(1) * cfg.batch_size);
    }
    plan
}

/// The learning rate of step `batch` of `epoch`: per-batch schedules reach their end
/// value on the last step, as PyTorch's do, times the warmup factor.
fn lr_at(cfg: &TrainConfig, epoch: usize, batch: usize, n_batches: usize, progress: &Progress) -> f64 {
    let step = (epoch - 1) * n_batches + batch;
    let at = step as f64 / (cfg.epochs * n_batches - 1).max(1) as f64 * cfg.epochs as f64;
    let warm = warmup_factor((epoch - 1) as f64 + (batch + 1) as f64 / n_batches as f64, cfg.warmup_epochs);
    cfg.schedule.lr(cfg.lr, at, cfg.epochs, &progress.watch.plateau) * warm
}

/// Trains the rest of the epoch in progress and evaluates it. Ctrl-C ends it after
/// the current batch with a resumable checkpoint and [`Error::Interrupted`].
fn run_epoch(ctx: &Ctx<'_>, learner: &mut Learner, progress: &mut Progress) -> Result<EpochRecord> {
    let cfg = ctx.cfg;
    let epoch = progress.position.epoch;
    let started = Instant::now();
    let plan = epoch_plan(ctx, epoch);
    let n_batches = plan.len().div_ceil(cfg.batch_size);
    // Gradient accumulation: optimizer step `g` gathers batches `g * n .. (g + 1) * n`,
    // each batch's loss weighted by its share of the step's samples.
    let n = cfg.accumulate.max(1);
    let n_steps = n_batches.div_ceil(n);
    let batch_len = |b: usize| cfg.batch_size.min(plan.len() - b * cfg.batch_size);
    let step_len = |g: usize| (g * n..((g + 1) * n).min(n_batches)).map(batch_len).sum::<usize>();
    learner.use_trained();
    let bar = progress_bar(ctx.opts.quiet, plan.len() as u64, format!("epoch {epoch}/{}", cfg.epochs));
    let (start_batch, seen_before) = (progress.position.batches_done, progress.tally.seen);
    bar.set_position(seen_before as u64);
    let mut lr = cfg.lr;
    let interrupt = ctx.opts.interrupt.as_deref().unwrap_or(&NEVER);
    let mut last_line = Instant::now();
    let mut step = |b: usize, xs: Tensor, ys: Tensor| -> Result<()> {
        let g = b / n;
        if b.is_multiple_of(n) {
            // Ctrl-C stops between optimizer steps, never inside an accumulation.
            if interrupt.load(Ordering::SeqCst) {
                return Err(Error::Interrupted { epoch, batch: b });
            }
            learner.opt.zero_grad();
        }
        lr = lr_at(cfg, epoch, g, n_steps, progress);
        let at = StepAt { epoch, batch: b, total_steps: cfg.epochs * n_steps };
        let s = learner.accumulate(at, &xs, &ys, batch_len(b) as f64 / step_len(g) as f64)?;
        if (b + 1).is_multiple_of(n) || b + 1 == n_batches {
            learner.apply(at, lr)?;
        }
        let t = &mut progress.tally;
        (t.loss_sum, t.correct, t.seen) = (t.loss_sum + s.loss * s.n as f64, t.correct + s.correct, t.seen + s.n);
        progress.position.batches_done = b + 1;
        bar.set_position(t.seen as u64);
        let rate = t.seen as f64 / (t.epoch_seconds + started.elapsed().as_secs_f64());
        let (loss, acc) = (t.loss_sum / t.seen as f64, t.correct as f64 / t.seen as f64);
        let status = format!("loss {loss:.4} acc {acc:.4} lr {lr:.2e} {rate:.0} img/s");
        // Without a terminal (a pipe, nohup, CI) the bar is hidden: a line every 30 s.
        if bar.is_hidden() && last_line.elapsed().as_secs() >= PROGRESS_LINE_SECONDS {
            last_line = Instant::now();
            let eta = (plan.len() - t.seen.min(plan.len())) as f64 / rate.max(1e-9);
            tracing::info!("epoch {epoch}/{}: {}/{} images, {status}, eta {eta:.0}s", cfg.epochs, t.seen, plan.len());
        }
        bar.set_message(status);
        Ok(())
    };
    // Dropout draws from libtorch's generator, seeded per batch (the feeds seed their
    // own per position or batch): a resumed run makes the same draws.
    let result = match &ctx.feed {
        Some(feed) => {
            let draws = Some((cfg.seed, epoch as u64));
            let (data, size) = (&ctx.splits.train, cfg.batch_size);
            for_each_device_batch(feed, data, ctx.norm, &plan, size, start_batch, draws, |b, xs, ys| {
                seed::dropout(cfg.seed, epoch, b);
                step(b, xs, ys)
            })
        }
        None => {
            let augment = EpochAugment { regular: &ctx.pipeline, copies: &ctx.copies, epoch: epoch as u64 };
            for_each_batch(&ctx.splits.train, &plan, cfg.batch_size, start_batch, Some(augment), |b, batch| {
                seed::dropout(cfg.seed, epoch, b);
                let xs = ctx.norm.to_tensor(&batch.pixels);
                let ys = Tensor::from_slice(&batch.labels).to_device(ctx.device);
                step(b, xs, ys)
            })
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    progress.totals.train_seconds += elapsed;
    progress.totals.images_seen += progress.tally.seen - seen_before;
    if let Err(Error::Interrupted { .. }) = result {
        bar.abandon();
        progress.tally.epoch_seconds += elapsed;
        checkpoint::save(&ctx.run, learner, progress)?;
        return Err(Error::Interrupted { epoch, batch: progress.position.batches_done });
    }
    result?;
    bar.finish_and_clear();
    let train_time = progress.tally.epoch_seconds + elapsed;
    if epoch == cfg.epochs {
        // The last scheduled epoch is evaluated with the final (averaged) weights.
        learner.finish();
    }
    // Validation, `best` and `last` score and hold the weights' average (`train.ema`);
    // the next epoch trains on from the model's own.
    learner.use_average();
    let eval_data = ctx.splits.eval();
    let eval = evaluate(&learner.net, eval_data, ctx.norm, ctx.eval_batch)?;
    let t = &progress.tally;
    Ok(EpochRecord {
        epoch,
        train_loss: t.loss_sum / t.seen as f64,
        train_acc: t.correct as f64 / t.seen as f64,
        val_loss: eval.loss,
        val_acc: eval.accuracy(),
        val_f1: eval.macro_f1(),
        lr,
        seconds: train_time + (started.elapsed().as_secs_f64() - elapsed),
        images_per_sec: t.seen as f64 / train_time,
    })
}

static NEVER: AtomicBool = AtomicBool::new(false);

/// How often an epoch without a progress bar logs where it is.
const PROGRESS_LINE_SECONDS: u64 = 30;

fn log_epoch(ctx: &Ctx<'_>, r: &EpochRecord) {
    let split = if std::ptr::eq(ctx.splits.eval(), &ctx.splits.test) { "test" } else { "val" };
    tracing::info!(
        "epoch {}/{}: train loss {:.4} acc {:.4} | {split} loss {:.4} acc {:.4} F1 {:.4} | lr {:.2e} | {:.1}s, {:.0} img/s",
        r.epoch,
        ctx.cfg.epochs,
        r.train_loss,
        r.train_acc,
        r.val_loss,
        r.val_acc,
        r.val_f1,
        r.lr,
        r.seconds,
        r.images_per_sec
    );
}

fn progress_bar(quiet: bool, len: u64, prefix: String) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_prefix(prefix);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}
