//! The training loop: shuffled mini-batches, evaluation on the test split after every
//! epoch, `history.csv`, checkpoints and `metrics.json` in the run folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cnnlab_augment::{Fill, Op, Pipeline};
use cnnlab_data::{plan_counts, Dataset, Imbalance, Splits, Variant};
use cnnlab_models::{build, ModelConfig, Network, Shape};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::batch::{for_each_batch, EpochAugment, Normalizer};
use crate::config::{DeviceChoice, OptimizerKind, TrainConfig};
use crate::error::{Error, Result};

/// Header of `history.csv`, one row per epoch.
pub const HISTORY_HEADER: [&str; 8] =
    ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_sec"];

/// One row of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub lr: f64,
    pub seconds: f64,
    pub images_per_sec: f64,
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
    pub epochs: usize,
    pub device: String,
    pub trainable_params: i64,
    pub train_seconds: f64,
    pub images_per_sec: f64,
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

/// How to run, beyond the experiment's own settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run folder; created if needed.
    pub out_dir: PathBuf,
    /// No progress bars.
    pub quiet: bool,
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

/// Trains `model` on `splits.train` with the `imbalance` strategy, evaluating on the
/// validation split (or test, without one) after every epoch, and on test at the end.
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
    let device = resolve_device(cfg.device)?;
    tch::manual_seed(cfg.seed as i64);
    let shape = splits.train.shape;
    let input = Shape::Map(shape.channels as i64, shape.height as i64, shape.width as i64);
    let classes = splits.train.num_classes() as i64;

    let vs = nn::VarStore::new(device);
    let net = build(&vs.root(), model, input, classes)?;
    let mut opt = match cfg.optimizer {
        OptimizerKind::Adam => nn::Adam { wd: cfg.weight_decay, ..Default::default() }.build(&vs, cfg.lr)?,
        OptimizerKind::Adamw => nn::AdamW { wd: cfg.weight_decay, ..Default::default() }.build(&vs, cfg.lr)?,
        OptimizerKind::Sgd => {
            nn::Sgd { momentum: cfg.momentum, nesterov: cfg.nesterov, wd: cfg.weight_decay, ..Default::default() }
                .build(&vs, cfg.lr)?
        }
    };
    let norm = Normalizer::fit(&splits.train, device);
    let pipeline = Pipeline::new(augment.to_vec(), cfg.seed);
    let copies = Pipeline::new(copy_augmentation(), cfg.seed ^ 0xC0FF_EE00);
    let class_weights =
        imbalance.class_weights(&splits.train.class_counts()).map(|w| Tensor::from_slice(&w).to_device(device));

    std::fs::create_dir_all(&opts.out_dir).map_err(|e| Error::io(&opts.out_dir, e))?;
    let history_path = opts.out_dir.join("history.csv");
    let csv_err = |source| Error::Csv { path: history_path.clone(), source };
    let mut history = csv::WriterBuilder::new().has_headers(false).from_path(&history_path).map_err(csv_err)?;
    history.write_record(HISTORY_HEADER).map_err(csv_err)?;
    history.flush().map_err(|e| Error::io(&history_path, e))?;

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
    let mut best_acc = f64::NEG_INFINITY;
    let mut last_eval = None;
    let (mut train_seconds, mut images_seen) = (0.0, 0usize);
    for epoch in 1..=cfg.epochs {
        let started = Instant::now();
        let mut plan = imbalance.plan(labels, classes as usize, epoch as u64, cfg.seed);
        if epoch == 1 || !matches!(imbalance, Imbalance::None | Imbalance::ClassWeights { .. }) {
            tracing::info!(
                "epoch {epoch}: imbalance strategy {} gives {} samples, per class {:?}",
                imbalance.name(),
                plan.len(),
                plan_counts(&plan, labels, classes as usize)
            );
        }
        plan.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(1_000_003) + epoch as u64));
        let bar = progress(opts.quiet, plan.len() as u64, format!("epoch {epoch}/{}", cfg.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0i64, 0usize);
        let augment = EpochAugment { regular: &pipeline, copies: &copies, epoch: epoch as u64 };
        for_each_batch(&splits.train, &plan, cfg.batch_size, Some(augment), |batch_idx, batch| {
            let xs = norm.to_tensor(&batch.pixels);
            let ys = Tensor::from_slice(&batch.labels).to_device(device);
            let logits = net.forward_t(&xs, true);
            let loss = logits.cross_entropy_loss(&ys, class_weights.as_ref(), tch::Reduction::Mean, -100, 0.0);
            let value = f64::try_from(&loss)?;
            if !value.is_finite() {
                return Err(Error::NonFinite { value, epoch, batch: batch_idx + 1 });
            }
            opt.backward_step(&loss);
            let b = batch.labels.len();
            loss_sum += value * b as f64;
            correct += i64::try_from(logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64))?;
            seen += b;
            bar.set_position(seen as u64);
            if batch_idx % 20 == 0 {
                let rate = seen as f64 / started.elapsed().as_secs_f64();
                bar.set_message(format!(
                    "loss {:.4} acc {:.4} {rate:.0} img/s",
                    loss_sum / seen as f64,
                    correct as f64 / seen as f64
                ));
            }
            Ok::<(), Error>(())
        })?;
        bar.finish_and_clear();
        let train_time = started.elapsed().as_secs_f64();
        train_seconds += train_time;
        images_seen += seen;

        let eval = evaluate(&net, splits.eval(), &norm, cfg.eval_batch_size)?;
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_acc: correct as f64 / seen as f64,
            val_loss: eval.loss,
            val_acc: eval.accuracy,
            lr: cfg.lr,
            seconds: started.elapsed().as_secs_f64(),
            images_per_sec: seen as f64 / train_time,
        };
        history.serialize(&record).map_err(csv_err)?;
        history.flush().map_err(|e| Error::io(&history_path, e))?;
        tracing::info!(
            "epoch {epoch}/{}: train loss {:.4} acc {:.4} | test loss {:.4} acc {:.4} | {:.1}s, {:.0} img/s",
            cfg.epochs,
            record.train_loss,
            record.train_acc,
            record.val_loss,
            record.val_acc,
            record.seconds,
            record.images_per_sec
        );
        save_atomically(&vs, &opts.out_dir.join("last.safetensors"))?;
        if eval.accuracy > best_acc {
            best_acc = eval.accuracy;
            save_atomically(&vs, &opts.out_dir.join("best.safetensors"))?;
        }
        last_eval = Some(eval);
    }

    let last_eval = last_eval.expect("epochs >= 1 was validated");
    // Per-epoch numbers came from the validation split when there is one; the final
    // metrics are always on test.
    let eval = if !std::ptr::eq(splits.eval(), &splits.test) {
        evaluate(&net, &splits.test, &norm, cfg.eval_batch_size)?
    } else {
        last_eval
    };
    let y_true: Vec<usize> = splits.test.labels.iter().map(|&l| l as usize).collect();
    let y_pred: Vec<usize> = eval.predicted.iter().map(|&p| p as usize).collect();
    let report = cnnlab_metrics::Report::new(&y_true, &y_pred, Some(&eval.probabilities[..]), &splits.test.classes)?;
    let report_path = opts.out_dir.join("classification_report.txt");
    std::fs::write(&report_path, report.text()).map_err(|e| Error::io(&report_path, e))?;
    let metrics = FinalMetrics {
        report,
        loss: eval.loss,
        n_samples: eval.n_samples,
        epochs: cfg.epochs,
        device: format!("{device:?}"),
        trainable_params: net.trainable_params(),
        train_seconds,
        images_per_sec: images_seen as f64 / train_seconds,
    };
    write_json(&opts.out_dir.join("metrics.json"), &metrics)?;
    Ok(metrics)
}

/// Loss and accuracy of `net` on `data`, without gradients and in eval mode.
pub fn evaluate(net: &Network, data: &Dataset, norm: &Normalizer, batch_size: usize) -> Result<Evaluation> {
    let items: Vec<(usize, Variant)> = (0..data.len()).map(|i| (i, Variant::Original)).collect();
    let (mut loss_sum, mut correct) = (0.0f64, 0i64);
    let mut predicted = Vec::with_capacity(data.len());
    let mut probabilities = Vec::with_capacity(data.len() * data.num_classes());
    tch::no_grad(|| {
        for_each_batch(data, &items, batch_size, None, |_, batch| {
            let xs = norm.to_tensor(&batch.pixels);
            let ys = Tensor::from_slice(&batch.labels).to_device(xs.device());
            let logits = net.forward_t(&xs, false);
            let loss = f64::try_from(logits.cross_entropy_for_logits(&ys))?;
            loss_sum += loss * batch.labels.len() as f64;
            let pred = logits.argmax(-1, false);
            correct += i64::try_from(pred.eq_tensor(&ys).sum(Kind::Int64))?;
            predicted.extend(Vec::<i64>::try_from(pred.to_device(Device::Cpu))?);
            let probs = logits.softmax(-1, Kind::Float).to_device(Device::Cpu).flatten(0, -1);
            probabilities.extend(Vec::<f32>::try_from(probs)?);
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

fn progress(quiet: bool, len: u64, prefix: String) -> ProgressBar {
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
