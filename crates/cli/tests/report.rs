//! Comparing runs: `cnnlab report` (REPORT.md and report.html), seed replicates with
//! intervals and verdicts, `cnnlab compare`, and an ensemble of seeds as one model.

use std::path::{Path, PathBuf};

use crate::util::{assert_ok, assert_one_line_error, cnnlab, small_shapes_config, workspace};

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
        assert_ok(&out);
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
    assert_ok(&out);
    let out = cnnlab(&["report", runs.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let md = std::fs::read_to_string(runs.join("REPORT.md")).unwrap();
    let table = md.split("## Seed 003: architectures").nth(1).unwrap().split("\n## ").next().unwrap();
    assert!(table.contains("| seed-recipe/seed3-final | final (augmentation) |"), "{table}");
    assert!(!table.contains("| shapes/seed3-final |"), "{table}");
    assert!(table.contains("Not listed: `shapes/seed3-final` (same name, trained another way"), "{table}");
    // The run table is for reading: 8 columns; each run's details are under its heading.
    let header = md.lines().find(|l| l.starts_with("| run | dataset |")).unwrap();
    assert_eq!(header.matches(" | ").count() + 1, 8, "{header}");
    assert!(md.contains("| shapes/imbalanced-none | shapes | seed3-final | 2 | "), "{md}");
    let details = md.split("### shapes/imbalanced-none\n").nth(1).unwrap();
    let row = details
        .lines()
        .find(|l| l.starts_with("| 288,264 | adam 0.001 | none | "))
        .unwrap_or_else(|| panic!("{details}"));
    assert!(row.ends_with("| random_crop, hflip |"), "{row}");
    assert!(md.contains("Compare speed between runs trained one at a time"), "{md}");
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

    // A group folder named `plots` is searched like any other (only a run's own
    // plots/ and ovr/ are not runs); a garbage row in one run's history.csv skips that
    // run with a warning naming the file, and the report is still written.
    std::fs::create_dir_all(runs.join("plots")).unwrap();
    let copied = std::process::Command::new("cp")
        .args(["-r", runs.join("shapes/seed3-final").to_str().unwrap(), runs.join("plots/copy").to_str().unwrap()])
        .status()
        .unwrap();
    assert!(copied.success());
    let history = runs.join("seed-recipe/seed3-final/history.csv");
    let text = std::fs::read_to_string(&history).unwrap();
    std::fs::write(&history, format!("{text}2,garbage,0.5\n")).unwrap();
    let out = cnnlab(&["report", runs.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("skipping ") && stderr.contains("seed-recipe/seed3-final/history.csv"), "{stderr}");
    let md = std::fs::read_to_string(runs.join("REPORT.md")).unwrap();
    assert!(md.contains("| plots/copy |") && md.contains("| shapes/seed3-final |"), "{md}");
    assert!(!md.contains("| seed-recipe/seed3-final | shapes |"), "{md}");
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
        assert_ok(&out);
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
    // An edited recipe does not reuse them: seeds at two learning rates are not one
    // interval. The error names the folder and the key, and nothing is trained.
    let config = tmp.path().join("imbalanced-none.toml");
    let edited = text.replace("lr = 1e-3", "lr = 0.05\nlabel_smoothing = 0.1");
    std::fs::write(&config, &edited).unwrap();
    let run_s = none.to_str().unwrap();
    let out = cnnlab(&["-q", "train", config.to_str().unwrap(), "--epochs", "1", "--out", run_s], tmp.path());
    assert_one_line_error(&out, 1, "seed-0 was trained with another recipe than");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("train.lr: 0.001 vs 0.05") && stderr.contains("train.label_smoothing"), "{stderr}");
    assert_eq!(std::fs::metadata(none.join("seed-1/metrics.json")).unwrap().modified().unwrap(), before);
    std::fs::write(&config, &text).unwrap();
    let args = ["-q", "train", config.to_str().unwrap(), "--epochs", "1", "--max-batches", "3", "--out", run_s];
    assert_one_line_error(&cnnlab(&args, tmp.path()), 1, "(--max-batches: (unset) vs 3; the run's value first)");

    let out = cnnlab(&["report", runs.to_str().unwrap()], tmp.path());
    assert_ok(&out);
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
    let section = md.split("### shapes/imbalanced-none\n").nth(1).unwrap();
    assert!(section.contains("The plots are seed 0's, the first of 2 seeds"), "{section}");
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
    // Another generated test set of the same size: the indices agree, the pixels not.
    let reseeded = text.replace("val_fraction = 0.1", "val_fraction = 0.1\nseed = 9").replace("seeds = [0, 1]", "");
    let out = compare(&none.join("seed-0"), &train("reseeded", &reseeded));
    assert_one_line_error(&out, 1, "has other content (pixels_sha256 differs)");
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
    assert_ok(&out);

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
        assert_eq!(e[e.len() - 1], a[a.len() - 1], "the examples' fingerprints are the seeds'");
        for c in 3..e.len() - 1 {
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
    assert_ok(&out);
    let test_dir = exported.join("test");
    let out = cnnlab(&["-q", "evaluate", "--run", run_s, test_dir.to_str().unwrap(), "--json"], tmp.path());
    assert_ok(&out);
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((ours["accuracy"].as_f64().unwrap() - m["accuracy"].as_f64().unwrap()).abs() < 1e-9, "{ours} vs {m}");
    assert_eq!(ours["confusion_matrix"], m["confusion_matrix"]);
    let image = std::fs::read_dir(test_dir.join("circle")).unwrap().next().unwrap().unwrap().path();
    let out = cnnlab(&["predict", "--run", run_s, image.to_str().unwrap()], tmp.path());
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("probability"));
    let out = cnnlab(&["compare", run.join("seed-3").to_str().unwrap(), run_s], tmp.path());
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("(McNemar)"));

    let out = cnnlab(&["report", runs.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    let md = std::fs::read_to_string(runs.join("REPORT.md")).unwrap();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| shapes/ens")).collect();
    assert!(rows.len() == 1 && rows[0].ends_with("| ensemble of 2 |"), "{md}");
    assert!(rows[0].contains("| 1 | "), "the ensemble's epochs are its seeds' (--epochs 1): {}", rows[0]);
    assert!(md.contains("An ensemble trains no network of its own: it has no training curves"), "{md}");

    std::fs::write(&config, text.replace("[train]", "[train]\nseeds = [3]\nensemble = true")).unwrap();
    let out = cnnlab(&["train", config_s, "--out", tmp.path().join("one").to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "train.ensemble");
}
