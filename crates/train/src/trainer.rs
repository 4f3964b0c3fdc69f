//! The training loop: shuffled mini-batches, a learning-rate schedule, evaluation on
//! the validation split after every epoch, `history.csv`, checkpoints (resumable,
//! written atomically), early stopping, and the final test evaluation
//! (`metrics.json`, `classification_report.txt`, `predictions.csv`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cnnlab_augment::{Fill, Op, Pipeline};
use cnnlab_data::{plan_counts, Dataset, Imbalance, Splits, Variant};
use cnnlab_metrics::{Average, ConfusionMatrix, ZeroDivision};
use cnnlab_models::{build, ModelConfig, ModelKind, Network, Shape};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::batch::{for_each_batch, EpochAugment, Normalizer};
use crate::config::{DeviceChoice, Feed, TrainConfig, Tta};
use crate::error::{Error, Result};
use crate::lookahead::LookaheadState;
use crate::mix::mix_batch;
use crate::optim::Optimizer;
use crate::resident::{for_each_device_batch, DeviceFeed};
use crate::schedule::{warmup_factor, Monitor, PlateauState};

/// Header of `history.csv`, one row per epoch.
pub const HISTORY_HEADER: [&str; 9] =
    ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr", "seconds", "images_per_sec"];

/// The resumable checkpoint of a run folder.
pub const RESUME_FILE: &str = "resume.safetensors";

/// One row of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    /// Macro-averaged F1 on the validation split.
    pub val_f1: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    pub seconds: f64,
    pub images_per_sec: f64,
}

impl EpochRecord {
    /// The value of a validation metric in this row.
    pub fn monitored(&self, metric: Monitor) -> f64 {
        match metric {
            Monitor::ValLoss => self.val_loss,
            Monitor::ValAcc => self.val_acc,
            Monitor::ValF1 => self.val_f1,
        }
    }
}

/// What `metrics.json` holds for the final evaluation on the test split: the keys of
/// `cnnlab metrics --json` (from cnnlab-metrics) plus the run's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinalMetrics {
    #[serde(flatten)]
    pub report: cnnlab_metrics::Report,
    /// Mean cross-entropy on the test split (`accuracy` is in the report).
    pub loss: f64,
    pub n_samples: usize,
    /// Epochs actually trained (fewer than configured after early stopping).
    pub epochs: usize,
    pub device: String,
    pub trainable_params: i64,
    pub train_seconds: f64,
    pub images_per_sec: f64,
    pub tta: Tta,
}

/// Result of one evaluation pass.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub n_samples: usize,
    /// Predicted class of each sample, in dataset order.
    pub predicted: Vec<i64>,
    /// Softmax probabilities, row-major `n_samples x n_classes`.
    pub probabilities: Vec<f32>,
}

impl Evaluation {
    /// Macro-averaged F1 of the predictions against `data`'s labels.
    pub fn macro_f1(&self, data: &Dataset) -> Result<f64> {
        let y_true: Vec<usize> = data.labels.iter().map(|&l| l as usize).collect();
        let y_pred: Vec<usize> = self.predicted.iter().map(|&p| p as usize).collect();
        let cm = ConfusionMatrix::from_labels(&y_true, &y_pred, data.num_classes())?;
        Ok(cm.averaged(Average::Macro, 1.0, ZeroDivision::Zero).2)
    }
}

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
}

/// Picks the device the config asks for.
pub fn resolve_device(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(Error::Config("train.device = \"cuda\" but libtorch sees no CUDA device".into())),
    }
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

/// Where a run stands; saved inside the resumable checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    /// The epoch in progress (1-based) and how many of its batches are done.
    epoch: usize,
    batches_done: usize,
    loss_sum: f64,
    correct: i64,
    seen: usize,
    epoch_seconds: f64,
    train_seconds: f64,
    images_seen: usize,
    best: Option<f64>,
    since_best: usize,
    plateau: PlateauState,
    /// Training is over (all epochs, or early stopping); only the test pass is left.
    finished: bool,
    epochs_run: usize,
}

/// A trained network and what the final evaluation needs.
struct Fitted {
    net: Network,
    norm: Normalizer,
    device: Device,
    progress: Progress,
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
    cfg.validate().map_err(Error::Config)?;
    if splits.train.is_empty() || splits.test.is_empty() {
        return Err(Error::Config("the train and test splits must both hold images".into()));
    }
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| Error::io(&opts.out_dir, e))?;
    match model.kind {
        ModelKind::Standard => {
            let fitted = fit(splits, imbalance, augment, model, cfg, opts)?;
            let eval = evaluate_tta(&fitted.net, &splits.test, &fitted.norm, cfg.eval_batch_size, cfg.tta)?;
            finish(splits, eval, &fitted, cfg, opts, fitted.net.trainable_params())
        }
        ModelKind::OneVsRest => one_vs_rest(splits, imbalance, augment, model, cfg, opts),
    }
}

/// Seed 000's ensemble: one binary "class c vs the rest" network per class, trained in
/// `out_dir/ovr/<class>/`; a test image goes to the class whose network is most
/// confident. The combined probabilities are renormalized to sum to one.
fn one_vs_rest(
    splits: &Splits,
    imbalance: &Imbalance,
    augment: &[Op],
    model: &ModelConfig,
    cfg: &TrainConfig,
    opts: &RunOptions,
) -> Result<FinalMetrics> {
    let classes = splits.test.classes.clone();
    let k = classes.len();
    let n = splits.test.len();
    let binary = |d: &Dataset, c: usize| {
        let labels = d.labels.iter().map(|&l| u8::from(l as usize == c)).collect();
        Dataset { labels, classes: vec!["rest".into(), classes[c].clone()], ..d.clone() }
    };
    let mut scores = vec![0f32; n * k];
    let (mut params, mut last) = (0, None);
    for (c, name) in classes.iter().enumerate() {
        tracing::info!("one-vs-rest: network {}/{k} ({name} vs the rest)", c + 1);
        let sub = Splits {
            train: binary(&splits.train, c),
            val: splits.val.as_ref().map(|v| binary(v, c)),
            test: binary(&splits.test, c),
            files: None,
            report: Default::default(),
        };
        let model = ModelConfig { kind: ModelKind::Standard, ..model.clone() };
        let sub_opts = RunOptions { out_dir: opts.out_dir.join("ovr").join(safe_name(name)), ..opts.clone() };
        let fitted = fit(&sub, imbalance, augment, &model, cfg, &sub_opts)?;
        let eval = evaluate_tta(&fitted.net, &sub.test, &fitted.norm, cfg.eval_batch_size, cfg.tta)?;
        for i in 0..n {
            scores[i * k + c] = eval.probabilities[i * 2 + 1];
        }
        params += fitted.net.trainable_params();
        last = Some(fitted);
    }
    let fitted = last.expect("at least one class");
    let (mut loss, mut correct, mut predicted) = (0.0, 0, Vec::with_capacity(n));
    for (i, row) in scores.chunks_mut(k).enumerate() {
        let sum: f32 = row.iter().sum::<f32>().max(f32::MIN_POSITIVE);
        row.iter_mut().for_each(|p| *p /= sum);
        let best = cnnlab_metrics::argmax_rows(row, k)[0];
        let truth = splits.test.labels[i] as usize;
        loss -= (row[truth].max(1e-7) as f64).ln();
        correct += usize::from(best == truth);
        predicted.push(best as i64);
    }
    let eval = Evaluation {
        loss: loss / n as f64,
        accuracy: correct as f64 / n as f64,
        n_samples: n,
        predicted,
        probabilities: scores,
    };
    finish(splits, eval, &fitted, cfg, opts, params)
}

/// A class name usable as a folder name.
pub(crate) fn safe_name(name: &str) -> String {
    name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Writes the test results: `classification_report.txt`, `predictions.csv`, `metrics.json`.
fn finish(
    splits: &Splits,
    eval: Evaluation,
    fitted: &Fitted,
    cfg: &TrainConfig,
    opts: &RunOptions,
    trainable_params: i64,
) -> Result<FinalMetrics> {
    let test = &splits.test;
    let y_true: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let y_pred: Vec<usize> = eval.predicted.iter().map(|&p| p as usize).collect();
    let report = cnnlab_metrics::Report::new(&y_true, &y_pred, Some(&eval.probabilities[..]), &test.classes)?;
    let report_path = opts.out_dir.join("classification_report.txt");
    std::fs::write(&report_path, report.text()).map_err(|e| Error::io(&report_path, e))?;
    let files = splits.files.as_ref().map(|f| &f.test).filter(|f| f.len() == test.len());
    let k = test.num_classes();
    let ids: Vec<String> = match files {
        Some(f) => f.iter().map(|p| p.display().to_string()).collect(),
        None => (0..test.len()).map(|i| i.to_string()).collect(),
    };
    let rows =
        ids.into_iter().enumerate().map(|(i, id)| (id, y_true[i], y_pred[i], &eval.probabilities[i * k..(i + 1) * k]));
    let id_header = if files.is_some() { "file" } else { "index" };
    write_predictions(&opts.out_dir.join("predictions.csv"), id_header, &test.classes, rows)?;
    let p = &fitted.progress;
    let metrics = FinalMetrics {
        report,
        loss: eval.loss,
        n_samples: eval.n_samples,
        epochs: p.epochs_run,
        device: format!("{:?}", fitted.device),
        trainable_params,
        train_seconds: p.train_seconds,
        images_per_sec: p.images_seen as f64 / p.train_seconds.max(1e-9),
        tta: cfg.tta,
    };
    write_json(&opts.out_dir.join("metrics.json"), &metrics)?;
    Ok(metrics)
}

/// A predictions CSV: `id_header` (`file` or `index`), `y_true`, `y_pred` (class names)
/// and one `p_<class>` column per class, a row `(id, true class, predicted class,
/// probabilities)` per image. What a run leaves as `predictions.csv` and `cnnlab evaluate
/// --out` writes; `cnnlab metrics` reads it back. Written to `<path>.tmp` and renamed, so
/// a failed write (full disk) leaves no half file.
pub fn write_predictions<'a>(
    path: &Path,
    id_header: &str,
    classes: &[String],
    rows: impl IntoIterator<Item = (String, usize, usize, &'a [f32])>,
) -> Result<()> {
    let csv_err = |source| Error::Csv { path: path.to_path_buf(), source };
    let tmp = path.with_extension("csv.tmp");
    let mut w = csv::Writer::from_path(&tmp).map_err(csv_err)?;
    let mut header = vec![id_header.to_string(), "y_true".to_string(), "y_pred".to_string()];
    header.extend(classes.iter().map(|c| format!("p_{c}")));
    w.write_record(&header).map_err(csv_err)?;
    for (id, y_true, y_pred, probs) in rows {
        let mut row = vec![id, classes[y_true].clone(), classes[y_pred].clone()];
        row.extend(probs.iter().map(|p| format!("{p:.6}")));
        w.write_record(&row).map_err(csv_err)?;
    }
    w.flush().map_err(|e| Error::io(&tmp, e))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The training loop proper, resumable. Leaves the trained network in memory.
fn fit(
    splits: &Splits,
    imbalance: &Imbalance,
    augment: &[Op],
    model: &ModelConfig,
    cfg: &TrainConfig,
    opts: &RunOptions,
) -> Result<Fitted> {
    let device = resolve_device(cfg.device)?;
    tch::manual_seed(cfg.seed as i64);
    let shape = splits.train.shape;
    let input = Shape::Map(shape.channels as i64, shape.height as i64, shape.width as i64);
    let classes = splits.train.num_classes() as i64;

    let mut vs = nn::VarStore::new(device);
    let net = build(&vs.root(), model, input, classes)?;
    let mut opt = Optimizer::new(&vs, cfg);
    std::fs::create_dir_all(&opts.out_dir).map_err(|e| Error::io(&opts.out_dir, e))?;
    let norm = Normalizer::fit(&splits.train, device);
    norm.save(&opts.out_dir.join("normalizer.json"))?;
    if net.has_whitening() {
        // airbench fits its whitening layer to 5,000 training images.
        let n = splits.train.len();
        let take = n.min(5000);
        let mut pixels = Vec::with_capacity(take * shape.len());
        for k in 0..take {
            pixels.extend_from_slice(splits.train.image(k * n / take));
        }
        net.fit_whitening(&norm.to_tensor(&pixels), 5e-4);
    }
    let mut lookahead = cfg.lookahead.map(|l| LookaheadState::new(&vs, l));
    let feed = match cfg.pipeline {
        Feed::Host => None,
        Feed::Device => Some(DeviceFeed::new(&splits.train, augment, device)?),
    };
    let pipeline = Pipeline::new(augment.to_vec(), cfg.seed);
    let copies = Pipeline::new(copy_augmentation(), cfg.seed ^ 0xC0FF_EE00);
    let class_weights =
        imbalance.class_weights(&splits.train.class_counts()).map(|w| Tensor::from_slice(&w).to_device(device));

    let resume_path = opts.out_dir.join(RESUME_FILE);
    let mut progress = if opts.resume && resume_path.exists() {
        let p = load_checkpoint(&resume_path, &mut vs, &mut opt, lookahead.as_mut())?;
        tracing::info!(
            "resuming {} at epoch {}, batch {} ({} optimizer steps done)",
            opts.out_dir.display(),
            p.epoch,
            p.batches_done,
            opt.steps()
        );
        p
    } else {
        Progress { epoch: 1, ..Default::default() }
    };
    let history_path = opts.out_dir.join("history.csv");
    let mut history = History::open(&history_path, progress.epoch)?;

    tracing::info!(
        "training {} ({} trainable params) on {} images of {}x{}x{}, {} classes, device {:?}",
        if model.name.is_empty() { "model" } else { &model.name },
        net.trainable_params(),
        splits.train.len(),
        shape.channels,
        shape.height,
        shape.width,
        classes,
        device
    );

    let labels = &splits.train.labels;
    let eval_data = splits.eval();
    let mut lr = cfg.lr;
    while !progress.finished && progress.epoch <= cfg.epochs {
        let epoch = progress.epoch;
        let started = Instant::now();
        let mut plan = imbalance.plan(labels, classes as usize, epoch as u64, cfg.seed);
        if epoch == 1 || !matches!(imbalance, Imbalance::None | Imbalance::ClassWeights { .. }) {
            tracing::debug!(
                "epoch {epoch}: imbalance strategy {} gives {} samples, per class {:?}",
                imbalance.name(),
                plan.len(),
                plan_counts(&plan, labels, classes as usize)
            );
        }
        plan.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(1_000_003) + epoch as u64));
        if let Some(max) = opts.max_batches {
            plan.truncate(max.max(1) * cfg.batch_size);
        }
        let n_batches = plan.len().div_ceil(cfg.batch_size);
        let bar = progress_bar(opts.quiet, plan.len() as u64, format!("epoch {epoch}/{}", cfg.epochs));
        let start_batch = progress.batches_done;
        let seen_before = progress.seen;
        bar.set_position(progress.seen as u64);
        let augment = EpochAugment { regular: &pipeline, copies: &copies, epoch: epoch as u64 };
        let mut interrupted = false;
        // Dropout draws from libtorch's generator, seeded per batch (the feeds seed their
        // own per position or batch): a resumed run makes the same draws.
        let seed_batch =
            |b: usize| tch::manual_seed((cfg.seed.wrapping_mul(7_919) ^ ((epoch as u64) << 32) ^ b as u64) as i64);
        let total_steps = cfg.epochs * n_batches;
        let mut train_step = |b: usize, xs: Tensor, ys: Tensor| {
            if opts.interrupt.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                interrupted = true;
                return Err(Error::Interrupted { epoch, batch: b });
            }
            let ce = |logits: &Tensor, ys: &Tensor| {
                logits.cross_entropy_loss(ys, class_weights.as_ref(), tch::Reduction::Mean, -100, cfg.label_smoothing)
            };
            // Mixing draws from its own generator, seeded per batch: a resumed run mixes alike.
            let mixed = cfg.mix.and_then(|m| {
                let seed = cfg.seed ^ 0x4D49_5800_0000_0000 ^ ((epoch as u64) << 24) ^ b as u64;
                mix_batch(&xs, &ys, &m, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed))
            });
            let (logits, loss) = match mixed {
                Some(m) => {
                    let logits = net.forward_t(&m.xs, true);
                    let loss = ce(&logits, &ys) * m.lam + ce(&logits, &m.partner) * (1.0 - m.lam);
                    (logits, loss)
                }
                None => {
                    let logits = net.forward_t(&xs, true);
                    let loss = ce(&logits, &ys);
                    (logits, loss)
                }
            };
            let value = f64::try_from(&loss)?;
            if !value.is_finite() {
                return Err(Error::NonFinite { value, epoch, batch: b + 1 });
            }
            opt.zero_grad();
            loss.backward();
            if let Some(max) = cfg.grad_clip {
                opt.clip_grad_norm(max)?;
            }
            // Per-batch schedules reach their end value on the last step, as PyTorch's.
            let step = (epoch - 1) * n_batches + b;
            let at = step as f64 / (cfg.epochs * n_batches - 1).max(1) as f64 * cfg.epochs as f64;
            let warm = warmup_factor((epoch - 1) as f64 + (b + 1) as f64 / n_batches as f64, cfg.warmup_epochs);
            lr = cfg.schedule.lr(cfg.lr, at, cfg.epochs, &progress.plateau) * warm;
            opt.step(lr);
            if let Some(la) = lookahead.as_mut() {
                la.after_step(opt.steps() as usize, total_steps);
            }
            let n = ys.size()[0] as usize;
            progress.loss_sum += value * n as f64;
            progress.correct += i64::try_from(logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64))?;
            progress.seen += n;
            progress.batches_done = b + 1;
            bar.set_position(progress.seen as u64);
            if b.is_multiple_of(20) {
                let rate = (progress.seen as f64) / (progress.epoch_seconds + started.elapsed().as_secs_f64());
                bar.set_message(format!(
                    "loss {:.4} acc {:.4} lr {lr:.2e} {rate:.0} img/s",
                    progress.loss_sum / progress.seen as f64,
                    progress.correct as f64 / progress.seen as f64
                ));
            }
            Ok(())
        };
        let result = match &feed {
            Some(feed) => {
                let draws = Some((cfg.seed, epoch as u64));
                let (data, size) = (&splits.train, cfg.batch_size);
                for_each_device_batch(feed, data, &norm, &plan, size, start_batch, draws, |b, xs, ys| {
                    seed_batch(b);
                    train_step(b, xs, ys)
                })
            }
            None => for_each_batch(&splits.train, &plan, cfg.batch_size, start_batch, Some(augment), |b, batch| {
                seed_batch(b);
                let xs = norm.to_tensor(&batch.pixels);
                let ys = Tensor::from_slice(&batch.labels).to_device(device);
                train_step(b, xs, ys)
            }),
        };
        let elapsed = started.elapsed().as_secs_f64();
        if interrupted {
            bar.abandon();
            progress.epoch_seconds += elapsed;
            progress.train_seconds += elapsed;
            progress.images_seen += progress.seen - seen_before;
            save_checkpoint(&resume_path, &vs, &opt, lookahead.as_ref(), &progress)?;
            return Err(Error::Interrupted { epoch, batch: progress.batches_done });
        }
        result?;
        bar.finish_and_clear();
        let train_time = progress.epoch_seconds + elapsed;
        progress.train_seconds += elapsed;
        progress.images_seen += progress.seen - seen_before;
        if epoch == cfg.epochs {
            if let Some(la) = lookahead.as_mut() {
                la.finish();
            }
        }

        let eval = evaluate(&net, eval_data, &norm, cfg.eval_batch_size)?;
        let record = EpochRecord {
            epoch,
            train_loss: progress.loss_sum / progress.seen as f64,
            train_acc: progress.correct as f64 / progress.seen as f64,
            val_loss: eval.loss,
            val_acc: eval.accuracy,
            val_f1: eval.macro_f1(eval_data)?,
            lr,
            seconds: train_time + (started.elapsed().as_secs_f64() - elapsed),
            images_per_sec: progress.seen as f64 / train_time,
        };
        history.append(&record)?;
        let split = if std::ptr::eq(eval_data, &splits.test) { "test" } else { "val" };
        let line = format!(
            "epoch {epoch}/{}: train loss {:.4} acc {:.4} | {split} loss {:.4} acc {:.4} F1 {:.4} | lr {:.2e} | {:.1}s, {:.0} img/s",
            cfg.epochs,
            record.train_loss,
            record.train_acc,
            record.val_loss,
            record.val_acc,
            record.val_f1,
            lr,
            record.seconds,
            record.images_per_sec
        );
        tracing::info!("{line}");

        let value = record.monitored(cfg.monitor);
        if let Some(metric) = cfg.schedule.plateau_metric() {
            cfg.schedule.end_epoch(&mut progress.plateau, record.monitored(metric));
        }
        save_atomically(&vs, &opts.out_dir.join("last.safetensors"))?;
        let min_delta = cfg.early_stopping.map_or(0.0, |e| e.min_delta);
        if cfg.monitor.improves(value, progress.best, min_delta) {
            progress.best = Some(value);
            progress.since_best = 0;
            save_atomically(&vs, &opts.out_dir.join("best.safetensors"))?;
        } else {
            progress.since_best += 1;
        }
        progress.epochs_run = epoch;
        if let Some(es) = cfg.early_stopping {
            if progress.since_best >= es.patience {
                tracing::info!(
                    "early stopping after epoch {epoch}: {} did not improve for {} epochs (best {:.4})",
                    cfg.monitor.name(),
                    es.patience,
                    progress.best.unwrap_or(f64::NAN)
                );
                progress.finished = true;
            }
        }
        progress = Progress {
            epoch: epoch + 1,
            batches_done: 0,
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            epoch_seconds: 0.0,
            finished: progress.finished || epoch == cfg.epochs,
            ..progress
        };
        save_checkpoint(&resume_path, &vs, &opt, lookahead.as_ref(), &progress)?;
    }
    Ok(Fitted { net, norm, device, progress })
}

/// `history.csv`, reopened on resume without the rows of epochs that will be redone.
struct History {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
}

impl History {
    fn open(path: &Path, from_epoch: usize) -> Result<Self> {
        let csv_err = |source| Error::Csv { path: path.to_path_buf(), source };
        let mut kept = Vec::new();
        if from_epoch > 1 && path.exists() {
            let mut reader = csv::Reader::from_path(path).map_err(csv_err)?;
            for row in reader.deserialize::<EpochRecord>() {
                let row = row.map_err(csv_err)?;
                if row.epoch < from_epoch {
                    kept.push(row);
                }
            }
        }
        let mut writer = csv::WriterBuilder::new().has_headers(false).from_path(path).map_err(csv_err)?;
        writer.write_record(HISTORY_HEADER).map_err(csv_err)?;
        for row in &kept {
            writer.serialize(row).map_err(csv_err)?;
        }
        writer.flush().map_err(|e| Error::io(path, e))?;
        Ok(History { path: path.to_path_buf(), writer })
    }

    fn append(&mut self, record: &EpochRecord) -> Result<()> {
        self.writer.serialize(record).map_err(|source| Error::Csv { path: self.path.clone(), source })?;
        self.writer.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// One safetensors file with the model's variables, the optimizer state and the run's
/// progress (JSON bytes in a u8 tensor), so that one rename makes it current.
fn save_checkpoint(
    path: &Path,
    vs: &nn::VarStore,
    opt: &Optimizer,
    lookahead: Option<&LookaheadState>,
    progress: &Progress,
) -> Result<()> {
    let mut named: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(k, v)| (format!("model.{k}"), v.to_device(Device::Cpu))).collect();
    named.extend(opt.state().into_iter().map(|(k, v)| (k, v.to_device(Device::Cpu))));
    named.extend(
        lookahead
            .map(LookaheadState::state)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.to_device(Device::Cpu))),
    );
    let json = serde_json::to_vec(progress).expect("plain struct");
    named.push(("progress.json".into(), Tensor::from_slice(&json)));
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let tmp = path.with_extension("tmp");
    Tensor::write_safetensors(&named, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn load_checkpoint(
    path: &Path,
    vs: &mut nn::VarStore,
    opt: &mut Optimizer,
    lookahead: Option<&mut LookaheadState>,
) -> Result<Progress> {
    let bad = |msg: String| Error::Config(format!("{}: {msg}", path.display()));
    let saved: HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
    let json = saved.get("progress.json").ok_or_else(|| bad("not a cnnlab resume checkpoint".into()))?;
    let bytes = Vec::<u8>::try_from(json)?;
    let progress: Progress = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let src = saved
                .get(&format!("model.{name}"))
                .ok_or_else(|| bad(format!("has no `{name}`: was it written by another model config?")))?;
            if src.size() != var.size() {
                return Err(bad(format!("`{name}` is {:?}, the model has {:?}", src.size(), var.size())));
            }
            var.f_copy_(src)?;
        }
        Ok(())
    })?;
    opt.load_state(&saved)?;
    if let Some(la) = lookahead {
        la.load(&saved)?;
    }
    Ok(progress)
}

/// Loss and accuracy of `net` on `data`, without gradients and in eval mode.
pub fn evaluate(net: &Network, data: &Dataset, norm: &Normalizer, batch_size: usize) -> Result<Evaluation> {
    evaluate_tta(net, data, norm, batch_size, Tta::None)
}

/// Softmax probabilities of `xs` under test-time augmentation `tta`.
pub(crate) fn tta_probabilities(net: &Network, xs: &Tensor, tta: Tta) -> Tensor {
    let probs = |x: &Tensor| net.forward_t(x, false).softmax(-1, Kind::Float);
    let flip_pair = |x: &Tensor| (probs(x) + probs(&x.flip([3]))) / 2.0;
    match tta {
        Tta::None => probs(xs),
        Tta::Flip => flip_pair(xs),
        Tta::FlipTranslate => {
            // airbench's level 2: shifted one pixel up-left and down-right (reflected border).
            let (h, w) = (xs.size()[2], xs.size()[3]);
            let padded = xs.reflection_pad2d([1, 1, 1, 1]);
            let up_left = padded.narrow(2, 0, h).narrow(3, 0, w);
            let down_right = padded.narrow(2, 2, h).narrow(3, 2, w);
            flip_pair(xs) * 0.5 + (flip_pair(&up_left) + flip_pair(&down_right)) * 0.25
        }
    }
}

/// [`evaluate`] with test-time augmentation (see [`Tta`]).
pub fn evaluate_tta(
    net: &Network,
    data: &Dataset,
    norm: &Normalizer,
    batch_size: usize,
    tta: Tta,
) -> Result<Evaluation> {
    let items: Vec<(usize, Variant)> = (0..data.len()).map(|i| (i, Variant::Original)).collect();
    let (mut loss_sum, mut correct) = (0.0f64, 0i64);
    let mut predicted = Vec::with_capacity(data.len());
    let mut probabilities = Vec::with_capacity(data.len() * data.num_classes());
    tch::no_grad(|| {
        for_each_batch(data, &items, batch_size, 0, None, |_, batch| {
            let xs = norm.to_tensor(&batch.pixels);
            let ys = Tensor::from_slice(&batch.labels).to_device(xs.device());
            let probs = tta_probabilities(net, &xs, tta);
            let loss = f64::try_from(probs.clamp_min(1e-12).log().nll_loss(&ys))?;
            loss_sum += loss * batch.labels.len() as f64;
            let pred = probs.argmax(-1, false);
            correct += i64::try_from(pred.eq_tensor(&ys).sum(Kind::Int64))?;
            predicted.extend(Vec::<i64>::try_from(pred.to_device(Device::Cpu))?);
            probabilities.extend(Vec::<f32>::try_from(probs.to_device(Device::Cpu).flatten(0, -1))?);
            Ok::<(), Error>(())
        })
    })?;
    let n = data.len();
    Ok(Evaluation {
        loss: loss_sum / n as f64,
        accuracy: correct as f64 / n as f64,
        n_samples: n,
        predicted,
        probabilities,
    })
}

fn progress_bar(quiet: bool, len: u64, prefix: String) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len).with_prefix(prefix);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar
}

/// Writes to a temporary file, then renames: a crash never leaves a half checkpoint.
fn save_atomically(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let tmp = path.with_extension("tmp.safetensors");
    vs.save(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes JSON through a temporary file and a rename.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).expect("plain structs serialize");
    std::fs::write(&tmp, text + "\n").map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
