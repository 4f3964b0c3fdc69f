//! Real training on tiny generated data: it learns, writes its run folder, is
//! reproducible, and stops cleanly on a non-finite loss.

use cnnlab_augment::{Fill, Op};
use cnnlab_data::{Dataset, ImageShape, Imbalance, Splits};
use cnnlab_models::{LayerSpec, ModelConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cnnlab_models::ModelKind;
use cnnlab_train::{
    train, DeviceChoice, EarlyStopping, Error, Monitor, OptimizerKind, RunOptions, Schedule, TrainConfig,
    HISTORY_HEADER,
};

/// A xorshift32 stream from `seed`: the generated datasets' noise.
fn xorshift(seed: u32) -> impl FnMut() -> u32 {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    }
}

/// Two classes of 8x8 grey images: a bright vertical bar (class 0) or a bright
/// horizontal bar (class 1), at random positions, over noise.
fn bars(n: usize, seed: u32) -> Dataset {
    let shape = ImageShape { channels: 1, height: 8, width: 8 };
    let mut next = xorshift(seed);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let label = (i % 2) as cnnlab_data::Label;
        let pos = (next() % 8) as usize;
        for y in 0..8 {
            for x in 0..8 {
                let on = if label == 0 { x == pos } else { y == pos };
                pixels.push(if on { 200 + (next() % 56) as u8 } else { (next() % 60) as u8 });
            }
        }
        labels.push(label);
    }
    Dataset::new(shape, pixels, labels, vec!["vertical".into(), "horizontal".into()]).unwrap()
}

fn model() -> ModelConfig {
    ModelConfig {
        name: "tiny".into(),
        kind: Default::default(),
        init: Default::default(),
        dirac: false,
        backbone: None,
        pretrained: None,
        head: None,
        layers: vec![
            LayerSpec::Conv { out: 8, kernel: 3, stride: 1, padding: 1, bias: true, groups: 1 },
            LayerSpec::Batchnorm { scale: true, momentum: 0.1, eps: 1e-5 },
            LayerSpec::Relu,
            LayerSpec::Maxpool { kernel: 2, stride: None },
            LayerSpec::Flatten,
            LayerSpec::Linear { out: Some(16), bias: true },
            LayerSpec::Relu,
            LayerSpec::Linear { out: None, bias: true },
        ],
    }
}

/// libtorch's random generator is global to the process: runs in parallel test
/// threads would draw from each other's stream. Each test that trains holds this.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig { epochs, batch_size: 16, device: DeviceChoice::Cpu, seed: 3, ..Default::default() }
}

fn splits() -> Splits {
    Splits::new(bars(256, 1), bars(128, 2))
}

#[test]
fn learns_and_writes_the_run_folder() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let augment = [
        Op::Hflip { p: 0.5 },
        Op::RandomCrop { size: None, padding: 1, pad_if_needed: false, fill: Fill::Constant, p: 1.0 },
    ];
    let metrics = train(&splits(), &Imbalance::None, &augment, &model(), &config(4), &opts).unwrap();
    assert!(metrics.report.accuracy > 0.9, "test accuracy {}", metrics.report.accuracy);
    assert_eq!((metrics.n_samples, metrics.epochs, metrics.trainable_params), (128, 4, 2_194));

    let history = std::fs::read_to_string(opts.out_dir.join("history.csv")).unwrap();
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines[0], HISTORY_HEADER.join(","));
    assert_eq!(lines.len(), 5);
    let last: Vec<f64> = lines[4].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(last[0], 4.0);
    assert!((last[4] - metrics.report.accuracy).abs() < 1e-12, "val_acc of the last epoch is the final accuracy");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(opts.out_dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(json["n_samples"], 128);
    assert!((json["accuracy"].as_f64().unwrap() - metrics.report.accuracy).abs() < 1e-12);
    assert!(json["loss"].as_f64().unwrap() > 0.0);
    // The keys of `cnnlab metrics --json`, computed by cnnlab-metrics.
    assert!((json["f1_micro"].as_f64().unwrap() - metrics.report.accuracy).abs() < 1e-12);
    assert!(json["roc_auc_ovr_macro"].as_f64().unwrap() > 0.9);
    assert_eq!(json["per_class"][1]["class"], "horizontal");
    let report = std::fs::read_to_string(opts.out_dir.join("classification_report.txt")).unwrap();
    assert!(report.contains("  vertical ") && report.contains("weighted avg"), "{report}");
    for f in ["last.safetensors", "best.safetensors"] {
        assert!(opts.out_dir.join(f).metadata().unwrap().len() > 8_000, "{f}");
    }
}

#[test]
fn same_seed_same_history() {
    let _serial = serial();
    let run = |name: &str| {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions { out_dir: dir.path().join(name), quiet: true, ..Default::default() };
        train(&splits(), &Imbalance::None, &[Op::Hflip { p: 0.5 }], &model(), &config(2), &opts).unwrap();
        let text = std::fs::read_to_string(opts.out_dir.join("history.csv")).unwrap();
        // Everything but the timing columns.
        text.lines().map(|l| l.split(',').take(6).collect::<Vec<_>>().join(",")).collect::<Vec<_>>()
    };
    assert_eq!(run("a"), run("b"));
}

#[test]
fn non_finite_loss_stops_with_epoch_and_batch() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let mut cfg = config(2);
    cfg.lr = 1e30;
    match train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts) {
        Err(Error::NonFinite { epoch: 1, batch, .. }) => assert!(batch >= 2, "batch {batch}"),
        other => panic!("expected a non-finite loss error, got {other:?}"),
    }
}

#[test]
fn bad_settings_name_the_key() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let mut cfg = config(1);
    cfg.batch_size = 0;
    let err = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap_err();
    assert_eq!(err.to_string(), "train.batch_size: must be at least 1");
    assert!(!opts.out_dir.exists(), "a run refused before training leaves no folder");
    let mut cfg = config(1);
    cfg.mix = Some(cnnlab_train::Mix { kind: cnnlab_train::MixKind::Mixup, alpha: 0.0, p: 1.0 });
    let err = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap_err();
    assert_eq!(err.to_string(), "train.mix.alpha: must be > 0");
    // A rate float32 cannot hold is not "not positive".
    for (lr, message) in [
        (1e308, "train.lr: must be below 3.4e38, float32's largest number"),
        (-1.0, "train.lr: must be a positive number"),
        (f64::NAN, "train.lr: must be a positive number"),
    ] {
        let cfg = TrainConfig { lr, ..config(1) };
        let err = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap_err();
        assert_eq!(err.to_string(), message, "lr = {lr}");
    }
}

#[test]
fn mixup_and_cutmix_learn_and_repeat() {
    let _serial = serial();
    for kind in [cnnlab_train::MixKind::Mixup, cnnlab_train::MixKind::Cutmix] {
        let run = |name: &str| {
            let dir = tempfile::tempdir().unwrap();
            let opts = RunOptions { out_dir: dir.path().join(name), quiet: true, ..Default::default() };
            let mut cfg = config(3);
            cfg.mix = Some(cnnlab_train::Mix { kind, alpha: 1.0, p: 0.5 });
            let metrics = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap();
            (metrics.report.accuracy, history_exact(&opts.out_dir))
        };
        let (accuracy, history) = run("a");
        assert!(accuracy > 0.9, "{kind:?}: accuracy {accuracy}");
        assert_eq!(history, run("b").1, "{kind:?}");
    }
}

#[test]
fn every_imbalance_strategy_trains_with_a_validation_split() {
    let _serial = serial();
    // 240 vertical bars, 24 horizontal: 10:1.
    let full = bars(528, 4);
    let keep: Vec<usize> = (0..full.len()).filter(|&i| full.labels[i] == 0 || i % 20 == 1).collect();
    let train_set = full.select(&keep);
    assert_eq!(train_set.class_counts(), [264, 27]);
    let mut splits = Splits::new(train_set, bars(128, 5));
    splits.val = Some(bars(64, 6));
    for strategy in [
        Imbalance::Oversample { per_class: 200 },
        Imbalance::CapRotate { per_class: 80 },
        Imbalance::MinFlip { per_class: 100 },
        Imbalance::AugmentTo { threshold: 150 },
        Imbalance::ClassWeights { scheme: Default::default(), beta: 0.999 },
        Imbalance::WeightedSampler,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
        // cap_rotate sees only 2 x 80 images an epoch: give every strategy 6 epochs.
        let metrics = train(&splits, &strategy, &[], &model(), &config(6), &opts).unwrap();
        eprintln!("{}: macro recall {:.3}", strategy.name(), metrics.report.recall_macro);
        assert_eq!(metrics.n_samples, 128, "{}: final metrics are on test", strategy.name());
        assert!(
            metrics.report.recall_macro > 0.75,
            "{}: macro recall {}",
            strategy.name(),
            metrics.report.recall_macro
        );
    }
}

#[test]
fn interrupted_run_resumes_to_the_same_history() {
    let _serial = serial();
    let mut cfg = config(4);
    cfg.schedule = Schedule::Cosine { min_lr: 0.0 };
    cfg.warmup_epochs = 0.5;
    let mut m = model();
    m.layers.insert(6, LayerSpec::Dropout { p: 0.3 });
    interrupt_and_resume(&cfg, &m);
}

/// The same with gradient accumulation and the weights' average on: the average, its
/// step count and which weights the model held are part of the checkpoint.
#[test]
fn interrupted_run_with_ema_and_accumulation_resumes_exactly() {
    let _serial = serial();
    let mut cfg = config(4);
    cfg.schedule = Schedule::OneCycle { pct_start: 0.25, div_factor: 25.0, final_div_factor: 1e4 };
    cfg.accumulate = 3;
    cfg.ema = Some(cnnlab_train::Ema { decay: 0.99, warmup: true });
    interrupt_and_resume(&cfg, &model());
}

/// Trains `cfg` whole, and again interrupted in epoch 2 and resumed: the histories
/// must be equal, and resuming the finished run only re-evaluates.
fn interrupt_and_resume(cfg: &TrainConfig, m: &ModelConfig) {
    let (cfg, m) = (cfg.clone(), m.clone());
    let aug = [Op::Hflip { p: 0.5 }];
    let dir = tempfile::tempdir().unwrap();
    let whole = RunOptions { out_dir: dir.path().join("whole"), quiet: true, ..Default::default() };
    train(&splits(), &Imbalance::None, &aug, &m, &cfg, &whole).unwrap();

    // Interrupt during epoch 2 (as soon as epoch 1's row is written), then resume.
    let flag = Arc::new(AtomicBool::new(false));
    let cut = RunOptions {
        out_dir: dir.path().join("cut"),
        quiet: true,
        interrupt: Some(flag.clone()),
        resume: false,
        max_batches: None,
        stop_after_epoch: None,
    };
    let history = cut.out_dir.join("history.csv");
    let watcher = std::thread::spawn(move || {
        while std::fs::read_to_string(&history).map_or(0, |t| t.lines().count()) < 2 {
            std::thread::yield_now();
        }
        flag.store(true, Ordering::SeqCst);
    });
    match train(&splits(), &Imbalance::None, &aug, &m, &cfg, &cut) {
        Err(Error::Interrupted { epoch, .. }) => assert!(epoch >= 2, "interrupted in epoch {epoch}"),
        other => panic!("expected an interruption, got {other:?}"),
    }
    watcher.join().unwrap();
    assert!(cut.out_dir.join("resume.safetensors").exists());
    let resumed = RunOptions { resume: true, interrupt: None, ..cut.clone() };
    let metrics = train(&splits(), &Imbalance::None, &aug, &m, &cfg, &resumed).unwrap();
    assert_eq!(metrics.epochs, 4);
    let (a, b) = (history_rounded(&whole.out_dir), history_rounded(&cut.out_dir));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "resumed history differs from the uninterrupted one");

    // Resuming a finished run only re-evaluates.
    let again = train(&splits(), &Imbalance::None, &aug, &m, &cfg, &resumed).unwrap();
    assert_eq!(again.report.accuracy, metrics.report.accuracy);
    assert_eq!(history_rounded(&cut.out_dir), a);

    // Paused at epoch ends (`cnnlab tune`'s rungs: after 1, then after 3), resumed
    // each time: the same history as the run that went through.
    let paused = RunOptions { out_dir: dir.path().join("paused"), quiet: true, ..Default::default() };
    for (stop, resume) in [(1, false), (3, true)] {
        let opts = RunOptions { stop_after_epoch: Some(stop), resume, ..paused.clone() };
        match train(&splits(), &Imbalance::None, &aug, &m, &cfg, &opts) {
            Err(Error::Paused { epoch }) => assert_eq!(epoch, stop),
            other => panic!("expected a pause after epoch {stop}, got {other:?}"),
        }
        assert_eq!(history_rounded(&paused.out_dir), a[..stop], "paused after epoch {stop}");
    }
    let last = RunOptions { resume: true, ..paused.clone() };
    assert_eq!(train(&splits(), &Imbalance::None, &aug, &m, &cfg, &last).unwrap().epochs, 4);
    assert_eq!(history_rounded(&paused.out_dir), a, "paused and resumed history differs from the uninterrupted one");
}

#[test]
fn early_stopping_ends_the_run() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let mut cfg = config(30);
    // A learning rate so small that val_loss barely moves: no improvement > min_delta.
    cfg.lr = 1e-9;
    cfg.monitor = Monitor::ValLoss;
    cfg.early_stopping = Some(EarlyStopping { patience: 2, min_delta: 0.01 });
    let metrics = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap();
    assert_eq!(metrics.epochs, 3, "first epoch sets the best, two without improvement stop");
    assert_eq!(history_rounded(&opts.out_dir).len(), 3);
}

/// Early stopping ends training the way the last scheduled epoch does: the model
/// takes lookahead's slow weights and `last.safetensors` holds them. Lookahead blends
/// every 10,000 steps here, never during training: the slow weights are the initial
/// ones, and the final weights must be them, not the trained (fast) ones.
#[test]
fn early_stopping_applies_lookaheads_averaging() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let mut cfg = config(30);
    cfg.monitor = Monitor::ValLoss;
    // Nothing improves by 1e9: epoch 1 sets the best, epoch 2 stops.
    cfg.early_stopping = Some(EarlyStopping { patience: 1, min_delta: 1e9 });
    cfg.lookahead = Some(cnnlab_train::Lookahead { every: 10_000, decay: 0.95 });
    let metrics = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap();
    assert_eq!(metrics.epochs, 2);
    let read = |name: &str| -> std::collections::HashMap<String, tch::Tensor> {
        tch::Tensor::read_safetensors(opts.out_dir.join(name)).unwrap().into_iter().collect()
    };
    let (last, resume) = (read("last.safetensors"), read("resume.safetensors"));
    let mut compared = 0;
    for (name, weights) in &last {
        let Some(slow) = resume.get(&format!("lookahead.{name}")) else { continue };
        assert!(weights.equal(slow), "{name}: last.safetensors holds the fast weights, not lookahead's");
        compared += 1;
    }
    assert!(compared >= 6, "conv, batchnorm and linear weights compared: {compared}");
    // And the training did move the weights away from the slow (initial) ones.
    let best = read("best.safetensors");
    assert!(best.iter().any(|(name, w)| !w.equal(&last[name])), "epoch 1's best weights are trained ones");
}

#[test]
fn sgd_nesterov_one_cycle_smoothing_clipping_and_tta_train() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let mut cfg = config(4);
    cfg.optimizer = OptimizerKind::Sgd;
    cfg.nesterov = true;
    cfg.lr = 0.1;
    cfg.weight_decay = 5e-4;
    cfg.schedule = Schedule::OneCycle { pct_start: 0.25, div_factor: 25.0, final_div_factor: 1e4 };
    cfg.label_smoothing = 0.1;
    cfg.grad_clip = Some(1.0);
    cfg.tta = cnnlab_train::Tta::Flip;
    let metrics = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap();
    assert!(metrics.report.accuracy > 0.9, "accuracy {}", metrics.report.accuracy);
    assert_eq!(metrics.tta, cnnlab_train::Tta::Flip);
    // One-cycle ends near lr / (25 * 1e4).
    let last = std::fs::read_to_string(opts.out_dir.join("history.csv")).unwrap();
    let lr: f64 = last.lines().last().unwrap().split(',').nth(6).unwrap().parse().unwrap();
    assert!(lr < 1e-4, "final lr {lr}");
    // predictions.csv: index, y_true, y_pred, one p_<class> column per class (rows sum
    // to 1), then each example's pixels fingerprinted.
    let preds = std::fs::read_to_string(opts.out_dir.join("predictions.csv")).unwrap();
    let mut lines = preds.lines();
    assert_eq!(lines.next().unwrap(), "index,y_true,y_pred,p_vertical,p_horizontal,pixels_sha256");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 128);
    let test = &splits().test;
    for (i, row) in rows.iter().enumerate() {
        let f: Vec<&str> = row.split(',').collect();
        let sum: f64 = f[3..5].iter().map(|v| v.parse::<f64>().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4, "{row}");
        assert_eq!(f[5], cnnlab_data::sha256_128(test.image(i)), "{row}");
    }
}

#[test]
fn one_vs_rest_trains_one_binary_network_per_class() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let mut m = model();
    m.kind = ModelKind::OneVsRest;
    let metrics = train(&splits(), &Imbalance::None, &[], &m, &config(3), &opts).unwrap();
    assert!(metrics.report.accuracy > 0.9, "accuracy {}", metrics.report.accuracy);
    assert_eq!(metrics.report.per_class.len(), 2);
    for class in ["vertical", "horizontal"] {
        assert!(opts.out_dir.join("ovr").join(class).join("history.csv").exists(), "{class}");
    }
    assert!(opts.out_dir.join("predictions.csv").exists());
}

#[test]
fn device_feed_without_augmentation_gives_the_host_feeds_history() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, pipeline: cnnlab_train::Feed| {
        let opts = RunOptions { out_dir: dir.path().join(name), quiet: true, ..Default::default() };
        let cfg = TrainConfig { pipeline, ..config(2) };
        // min_flip plans every image three times: as is, mirrored and upside down.
        let imbalance = Imbalance::MinFlip { per_class: 100 };
        train(&splits(), &imbalance, &[], &model(), &cfg, &opts).unwrap();
        history_exact(&opts.out_dir)
    };
    assert_eq!(run("host", cnnlab_train::Feed::Host), run("device", cnnlab_train::Feed::Device));
}

#[test]
fn device_feed_augments_learns_and_resumes_exactly() {
    let _serial = serial();
    let aug = [
        Op::Hflip { p: 0.5 },
        Op::RandomCrop { size: None, padding: 1, pad_if_needed: false, fill: Fill::Reflect, p: 1.0 },
    ];
    let cfg = TrainConfig {
        pipeline: cnnlab_train::Feed::Device,
        lookahead: Some(cnnlab_train::Lookahead { every: 2, decay: 0.9 }),
        tta: cnnlab_train::Tta::FlipTranslate,
        ..config(3)
    };
    let dir = tempfile::tempdir().unwrap();
    let whole = RunOptions { out_dir: dir.path().join("whole"), quiet: true, ..Default::default() };
    let metrics = train(&splits(), &Imbalance::None, &aug, &model(), &cfg, &whole).unwrap();
    assert!(metrics.report.accuracy > 0.9, "accuracy {}", metrics.report.accuracy);
    assert_eq!(metrics.tta, cnnlab_train::Tta::FlipTranslate);

    // Stop after epoch 1 (max one epoch, then resume with the full config).
    let cut = RunOptions { out_dir: dir.path().join("cut"), quiet: true, ..Default::default() };
    train(&splits(), &Imbalance::None, &aug, &model(), &TrainConfig { epochs: 3, ..cfg.clone() }, &cut).unwrap();
    let full = history_exact(&whole.out_dir);
    assert_eq!(full, history_exact(&cut.out_dir), "same seed, same draws");

    // An op the device cannot do is refused, naming it.
    let bad = [Op::Rotate { degrees: 10.0, fill: Fill::Constant, p: 1.0 }];
    let opts = RunOptions { out_dir: dir.path().join("bad"), quiet: true, ..Default::default() };
    let err = train(&splits(), &Imbalance::None, &bad, &model(), &cfg, &opts).unwrap_err().to_string();
    assert!(err.contains("augment.ops[0] is `rotate`"), "{err}");
}

#[test]
fn whitening_net_with_shift_only_batchnorm_trains() {
    let _serial = serial();
    let m: ModelConfig = toml::from_str(
        r#"
        layers = [
          { type = "whiten", kernel = 2 },
          { type = "gelu" },
          { type = "conv", out = 8, kernel = 3, padding = 1, bias = false },
          { type = "maxpool", kernel = 2 },
          { type = "batchnorm", scale = false },
          { type = "gelu" },
          { type = "flatten" },
          { type = "linear", bias = false },
          { type = "scale", by = 0.5 },
        ]"#,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions { out_dir: dir.path().join("run"), quiet: true, ..Default::default() };
    let cfg = TrainConfig { optimizer: OptimizerKind::Sgd, nesterov: true, lr: 0.2, ..config(3) };
    let metrics = train(&splits(), &Imbalance::None, &[], &m, &cfg, &opts).unwrap();
    assert!(metrics.report.accuracy > 0.9, "accuracy {}", metrics.report.accuracy);
    // The fitted whitening weights are saved with the model (predict needs them).
    let saved = tch::Tensor::read_safetensors(opts.out_dir.join("last.safetensors")).unwrap();
    let (_, w) = saved.iter().find(|(n, _)| n == "whiten0.weight").expect("whiten0.weight saved");
    assert!(f64::try_from(w.abs().sum(tch::Kind::Double)).unwrap() > 0.0, "fitted, not zeros");
}

/// `n` RGB 32x32 images of the two bar classes (a backbone needs 3 channels and at
/// least 32x32).
fn rgb_bars(n: usize, seed: u32) -> Dataset {
    let grey = bars(n, seed);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (img, label) = (grey.image(i), grey.labels[i]);
        for y in 0..32 {
            for x in 0..32 {
                let v = img[(y / 4) * 8 + x / 4];
                pixels.extend([v, v / 2, 255 - v]);
            }
        }
        labels.push(label);
    }
    let shape = ImageShape { channels: 3, height: 32, width: 32 };
    Dataset::new(shape, pixels, labels, vec!["vertical".into(), "horizontal".into()]).unwrap()
}

/// fastai's fine_tune: with `freeze_epochs = 1` the first epoch trains the head alone
/// (the backbone's weights and batch-norm statistics stay the pretrained ones, byte
/// for byte), the next epochs train everything.
#[test]
fn frozen_backbone_epochs_train_the_head_alone() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // "Pretrained" weights: a seeded ResNet-18 saved as safetensors.
    let model: ModelConfig = toml::from_str("backbone = \"resnet18\"\nhead = { dropout = 0.0 }").unwrap();
    let weights = dir.path().join("resnet18.safetensors");
    {
        tch::manual_seed(7);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let shape = cnnlab_models::Shape::Map(3, 32, 32);
        cnnlab_models::build(&vs.root(), &model, shape, 2).unwrap();
        let named: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
        tch::Tensor::write_safetensors(&named, &weights).unwrap();
    }
    let model = ModelConfig { pretrained: Some(weights.display().to_string()), ..model };
    let splits = Splits::new(rgb_bars(64, 1), rgb_bars(32, 2));
    let run = |epochs: usize, out: &str| {
        let cfg = TrainConfig { freeze_epochs: 1, backbone_lr_mult: 0.5, ..config(epochs) };
        let opts = RunOptions { out_dir: dir.path().join(out), quiet: true, ..Default::default() };
        train(&splits, &Imbalance::None, &[], &model, &cfg, &opts).unwrap();
        let last: std::collections::HashMap<String, tch::Tensor> =
            tch::Tensor::read_safetensors(dir.path().join(out).join("last.safetensors")).unwrap().into_iter().collect();
        last
    };
    let pretrained: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&weights).unwrap().into_iter().collect();
    let same = |a: &tch::Tensor, b: &tch::Tensor| a.equal(b);
    let frozen = run(1, "frozen");
    for name in
        ["conv1.weight", "bn1.running_mean", "bn1.running_var", "layer4.1.conv2.weight", "layer2.0.downsample.1.bias"]
    {
        assert!(same(&frozen[name], &pretrained[name]), "{name} moved in the frozen epoch");
    }
    assert!(!same(&frozen["fc.weight"], &pretrained["fc.weight"]), "the head trains");
    let thawed = run(2, "thawed");
    for name in ["conv1.weight", "bn1.running_mean", "layer4.1.conv2.weight"] {
        assert!(!same(&thawed[name], &pretrained[name]), "{name} trains after the frozen epoch");
    }
    let normalizer = std::fs::read_to_string(dir.path().join("thawed/normalizer.json")).unwrap();
    assert!(
        normalizer.contains("\"source\":\"imagenet\"") || normalizer.contains("\"source\": \"imagenet\""),
        "{normalizer}"
    );
}

/// `set_lr_mult` scales a parameter group's learning rate: plain SGD moves the
/// selected variable by `lr * mult * grad`.
#[test]
fn lr_multipliers_scale_the_step() {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let a = vs.root().sub("head").zeros("w", &[3]);
    let b = vs.root().sub("body").zeros("w", &[3]);
    let cfg = TrainConfig { optimizer: OptimizerKind::Sgd, momentum: 0.0, ..TrainConfig::default() };
    let mut opt = cnnlab_train::Optimizer::new(&vs, &cfg);
    opt.set_lr_mult(|name| name.starts_with("body"), 0.25);
    opt.zero_grad();
    (a.sum(tch::Kind::Float) + b.sum(tch::Kind::Float)).backward();
    opt.step(0.1);
    let close = |t: &tch::Tensor, v: f64| (t - v).abs().max().double_value(&[]) < 1e-7;
    assert!(close(&a, -0.1) && close(&b, -0.025), "{a} {b}");
}

/// Two classes of 4x4 grey images, bright on the left half (class 0) or on the right
/// half (class 1), over noise: linearly separable.
fn halves(n: usize, seed: u32) -> Dataset {
    let shape = ImageShape { channels: 1, height: 4, width: 4 };
    let mut next = xorshift(seed);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let label = (i % 2) as cnnlab_data::Label;
        for _y in 0..4 {
            for x in 0..4 {
                let bright = (x < 2) == (label == 0);
                pixels.push(if bright { 150 + (next() % 100) as u8 } else { (next() % 100) as u8 });
            }
        }
        labels.push(label);
    }
    Dataset::new(shape, pixels, labels, vec!["left".into(), "right".into()]).unwrap()
}

/// fastai's range test on a case whose answer is known: a linear model on linearly
/// separable data, plain SGD. From the same starting weights, one full-batch SGD step
/// lowers the loss for every rate up to some `lr_max` and raises it above; the valley
/// and steepest-descent suggestions must be rates where it lowers it. The record is an
/// exponential ramp, the smoothed loss fastai's debiased moving average of the batch
/// losses, and the test stops once the loss diverges.
#[test]
fn lr_find_suggests_rates_where_one_sgd_step_lowers_the_loss() {
    use cnnlab_models::Shape;
    use cnnlab_train::{lr_find, LrFindConfig, Normalizer};
    use tch::nn::ModuleT;
    let _serial = serial();
    let data = halves(512, 7);
    let splits = Splits::new(data.clone(), halves(64, 8));
    let mut linear = model();
    linear.layers = vec![LayerSpec::Flatten, LayerSpec::Linear { out: None, bias: true }];
    let cfg = TrainConfig {
        optimizer: OptimizerKind::Sgd,
        momentum: 0.0,
        weight_decay: 0.0,
        batch_size: 64,
        // A finite optimum (the plain cross-entropy of separable data falls towards 0
        // whatever the step), so that too large a step overshoots it.
        label_smoothing: 0.1,
        ..config(1)
    };
    let find = LrFindConfig { start: 1e-5, end: 1e4, steps: 100, stop_div: true };
    let found = lr_find(&splits, &Imbalance::None, &[], &linear, &cfg, &find).unwrap();

    let n = found.lrs.len();
    assert!(found.diverged && n < 100, "the loss diverges before 1e4: {n} steps");
    for (i, lr) in found.lrs.iter().enumerate() {
        let expected = 1e-5 * 1e9f64.powf(i as f64 / 100.0);
        assert!((lr / expected - 1.0).abs() < 1e-9, "step {i}: {lr} vs {expected}");
    }
    let mut avg = 0.0;
    for (i, (raw, smooth)) in found.raw.iter().zip(&found.losses).enumerate() {
        avg = 0.98 * avg + 0.02 * raw;
        assert!((smooth - avg / (1.0 - 0.98f64.powi(i as i32 + 1))).abs() < 1e-9, "step {i}");
    }
    let best = found.losses.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(found.losses[n - 1] > 4.0 * best, "stopped at 4x the best smoothed loss");

    // One full-batch SGD step from the weights the test started from (train.seed).
    let norm = Normalizer::fit(&data, tch::Device::Cpu);
    let xs = norm.to_tensor(&data.pixels());
    let ys = tch::Tensor::from_slice(&data.labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
    let lowers = |lr: f64| -> bool {
        tch::manual_seed(cfg.seed as i64);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = cnnlab_models::build(&vs.root(), &linear, Shape::Map(1, 4, 4), 2).unwrap();
        let loss =
            |logits: tch::Tensor| logits.cross_entropy_loss(&ys, None::<tch::Tensor>, tch::Reduction::Mean, -100, 0.1);
        let before = loss(net.forward_t(&xs, true));
        before.backward();
        tch::no_grad(|| {
            for mut v in vs.trainable_variables() {
                let step = v.grad() * lr;
                let _ = v.f_sub_(&step).unwrap();
            }
        });
        let after = loss(net.forward_t(&xs, true));
        f64::try_from(after).unwrap() < f64::try_from(before).unwrap()
    };
    let grid: Vec<f64> = (-12..=16).map(|k| 10f64.powf(k as f64 / 4.0)).collect();
    let lr_max = grid.iter().copied().take_while(|&lr| lowers(lr)).last().expect("small steps lower the loss");
    assert!(!lowers(lr_max * 10.0), "a large enough step raises the loss ({lr_max})");
    for (name, lr) in [("valley", found.valley.unwrap()), ("steep", found.steep.unwrap())] {
        assert!(lr <= lr_max && lowers(lr), "{name} {lr:.3e}: one SGD step must lower the loss (up to {lr_max:.3e})");
    }
    assert!(found.valley.unwrap() > 1e-3, "not a vanishing rate: {:?}", found.valley);
}

/// Gradient accumulation: 4 batches of 16 make the optimizer step that one batch of 64
/// makes (a network without batch norm or dropout, plain SGD): the same weights to 1e-5.
#[test]
fn accumulating_four_batches_of_16_is_one_batch_of_64() {
    let _serial = serial();
    let mut m = model();
    m.layers.retain(|l| !matches!(l, LayerSpec::Batchnorm { .. }));
    let dir = tempfile::tempdir().unwrap();
    let mut weights = vec![];
    for (batch_size, accumulate) in [(64, 1), (16, 4)] {
        let cfg = TrainConfig {
            batch_size,
            accumulate,
            optimizer: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            schedule: Schedule::Cosine { min_lr: 0.0 },
            ..config(2)
        };
        let opts = RunOptions { out_dir: dir.path().join(format!("b{batch_size}")), quiet: true, ..Default::default() };
        train(&splits(), &Imbalance::None, &[], &m, &cfg, &opts).unwrap();
        let mut tensors = tch::Tensor::read_safetensors(opts.out_dir.join("last.safetensors")).unwrap();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        weights.push(tensors);
    }
    assert!(!weights[0].is_empty());
    for ((name, a), (other, b)) in weights[0].iter().zip(&weights[1]) {
        assert_eq!(name, other);
        let diff = f64::try_from((a - b).abs().max()).unwrap();
        assert!(diff < 1e-5, "{name}: batch 64 and 4 x 16 differ by {diff}");
    }
    // Not equal by doing nothing: the network learned.
    let history = std::fs::read_to_string(dir.path().join("b16/history.csv")).unwrap();
    let loss: Vec<f64> = history.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert!(loss.len() == 2 && loss[1] < loss[0], "{history}");
}

/// Mixed precision on CPU: bf16 and fp16 autocast train like fp32 (the first
/// epoch's training loss within 2% of fp32's, the same high test accuracy), and an
/// fp16 run (whose loss scale is in the checkpoint) resumes to the same history.
#[test]
fn bf16_and_fp16_train_like_fp32_and_fp16_resumes_exactly() {
    use cnnlab_train::Precision;
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut first_loss = vec![];
    for precision in [Precision::Fp32, Precision::Bf16, Precision::Fp16] {
        let cfg = TrainConfig { precision, ..config(3) };
        let opts = RunOptions { out_dir: dir.path().join(format!("{precision:?}")), quiet: true, ..Default::default() };
        let metrics = train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap();
        assert!(metrics.report.accuracy > 0.9, "{precision:?}: test accuracy {}", metrics.report.accuracy);
        let history = std::fs::read_to_string(opts.out_dir.join("history.csv")).unwrap();
        first_loss.push(history.lines().nth(1).unwrap().split(',').nth(1).unwrap().parse::<f64>().unwrap());
    }
    for (name, loss) in ["bf16", "fp16"].iter().zip(&first_loss[1..]) {
        let rel = (loss - first_loss[0]).abs() / first_loss[0];
        assert!(rel < 0.02, "{name}: first-epoch loss {loss} vs fp32 {} ({:.1}%)", first_loss[0], rel * 100.0);
    }
    interrupt_and_resume(&TrainConfig { precision: Precision::Fp16, ..config(4) }, &model());
}

/// Channels-last memory order (on by default on CUDA) changes strides only: forced on
/// the CPU, a run trains to the same history and weights as without it (to float
/// rounding: the convolutions take other kernels), its checkpoints load as any other,
/// and it resumes exactly.
#[test]
fn channels_last_trains_like_the_standard_layout_and_resumes_exactly() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (mut losses, mut weights) = (vec![], vec![]);
    for on in [false, true] {
        let cfg = TrainConfig { channels_last: Some(on), ..config(2) };
        let opts = RunOptions { out_dir: dir.path().join(format!("cl-{on}")), quiet: true, ..Default::default() };
        train(&splits(), &Imbalance::None, &[], &model(), &cfg, &opts).unwrap();
        let history = std::fs::read_to_string(opts.out_dir.join("history.csv")).unwrap();
        let loss: Vec<f64> = history.lines().skip(1).map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
        losses.push(loss);
        let mut tensors = tch::Tensor::read_safetensors(opts.out_dir.join("last.safetensors")).unwrap();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        weights.push(tensors);
    }
    assert_eq!(losses[0].len(), 2);
    for (a, b) in losses[0].iter().zip(&losses[1]) {
        assert!((a - b).abs() / a < 1e-4, "epoch losses {:?} (standard) vs {:?} (channels-last)", losses[0], losses[1]);
    }
    assert!(weights[0].iter().any(|(_, t)| t.dim() == 4), "the model has convolutions");
    for ((name, a), (other, b)) in weights[0].iter().zip(&weights[1]) {
        assert_eq!((name, a.size()), (other, b.size()));
        let diff = f64::try_from((a - b).abs().max()).unwrap();
        assert!(diff < 1e-3, "{name}: standard and channels-last runs differ by {diff}");
    }
    interrupt_and_resume(&TrainConfig { channels_last: Some(true), ..config(4) }, &model());
}

/// history.csv of the run in `dir` without the timing columns, to 4 decimals, a line
/// per epoch (as text: NaN equals NaN, and a failure shows the numbers).
fn history_rounded(dir: &std::path::Path) -> Vec<String> {
    history(dir, Some(4))
}

/// history.csv of the run in `dir` without the timing columns, exactly.
fn history_exact(dir: &std::path::Path) -> Vec<String> {
    history(dir, None)
}

fn history(dir: &std::path::Path, decimals: Option<i32>) -> Vec<String> {
    let rows = cnnlab_train::RunDir::new(dir).history_without_timing(decimals).unwrap();
    rows.iter().map(|row| row.map(|v| format!("{v:?}")).join(",")).collect()
}

/// `lr-find` steps as `train` does: with `accumulate = 4` of 16 images, each step is one
/// optimizer step on 64, so the record is that of `batch_size = 64` (the same images in
/// the same order, the same gradients up to float rounding), not of 16. A one-vs-rest
/// config tests the binary network of its largest class.
#[test]
fn lr_find_takes_accumulation_and_one_vs_rest_as_train_does() {
    use cnnlab_train::{lr_find, LrFindConfig};
    let _serial = serial();
    let splits = Splits::new(halves(512, 7), halves(64, 8));
    let mut linear = model();
    linear.layers = vec![LayerSpec::Flatten, LayerSpec::Linear { out: None, bias: true }];
    let base = TrainConfig { optimizer: OptimizerKind::Sgd, momentum: 0.0, weight_decay: 0.0, ..config(1) };
    let find = LrFindConfig { start: 1e-3, end: 10.0, steps: 12, stop_div: false };
    let whole =
        lr_find(&splits, &Imbalance::None, &[], &linear, &TrainConfig { batch_size: 64, ..base.clone() }, &find);
    let parts = TrainConfig { batch_size: 16, accumulate: 4, ..base.clone() };
    let (whole, parts) = (whole.unwrap(), lr_find(&splits, &Imbalance::None, &[], &linear, &parts, &find).unwrap());
    assert_eq!(whole.raw.len(), 12);
    for (i, (a, b)) in whole.raw.iter().zip(&parts.raw).enumerate() {
        assert!((a - b).abs() < 1e-5, "step {i}: batch 64 {a}, 4 x 16 {b}");
    }
    let small =
        lr_find(&splits, &Imbalance::None, &[], &linear, &TrainConfig { batch_size: 16, ..base.clone() }, &find);
    assert!((small.unwrap().raw[3] - parts.raw[3]).abs() > 1e-4, "16-image steps are another record");
    assert_eq!(whole.member, None);

    let mut three = halves(300, 9);
    three.classes.push("third".into());
    three.labels.iter_mut().take(80).filter(|l| **l == 1).for_each(|l| *l = 2);
    let ovr = ModelConfig { kind: cnnlab_models::ModelKind::OneVsRest, ..linear };
    let found = lr_find(&Splits::new(three.clone(), three), &Imbalance::None, &[], &ovr, &base, &find).unwrap();
    // 150 left, 110 right, 40 third.
    assert_eq!(found.member.as_deref(), Some("left"));
}
