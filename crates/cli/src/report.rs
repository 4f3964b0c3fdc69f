//! `cnnlab report RUNS_DIR`: every finished run under RUNS_DIR compared in one table,
//! the seeds' comparisons with their published numbers beside ours, and per-run plots;
//! written as RUNS_DIR/REPORT.md and RUNS_DIR/report.html (PNG files next to each run,
//! linked relatively, so both open from disk).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::experiment::{Experiment, Target};
use crate::plots;

/// One finished run, as the report shows it.
#[derive(Debug)]
pub(crate) struct RunRow {
    /// Path relative to the runs folder, e.g. `cifar10/seed3-final`.
    pub(crate) id: String,
    pub(crate) stem: String,
    dir: PathBuf,
    dataset: String,
    model: String,
    params: i64,
    imbalance: String,
    augment: String,
    optimizer: String,
    epochs: String,
    train_seconds: f64,
    images_per_sec: f64,
    pub(crate) accuracy: f64,
    pub(crate) f1_macro: f64,
    roc_auc: Option<f64>,
    mcc: f64,
    f1_micro: f64,
    target: Option<Target>,
    plots: Vec<(String, PathBuf)>,
}

/// One row of a comparison: run stem, what it is, the seed's own number.
type Entry = (&'static str, &'static str, Option<&'static str>);

/// The seeds' comparisons: (title, the dataset the seed's numbers are on, rows).
const COMPARISONS: &[(&str, &str, &[Entry])] = &[
    (
        "Seed 003: architectures (CIFAR-10 test accuracy in the seed)",
        "cifar10",
        &[
            ("seed3-simple", "SimpleCNN", Some("0.6405")),
            ("seed3-notsimple", "NotSimpleCNN (+BatchNorm, 3 blocks)", Some("0.7209")),
            ("seed3-pooling", "PoolingCNN (2 blocks)", None),
            ("seed3-final", "final (augmentation)", Some("0.8090")),
        ],
    ),
    (
        "Seed 003: dropout vs augmentation",
        "cifar10",
        &[
            ("seed3-notsimple", "neither", Some("0.7209")),
            ("seed3-dropout", "dropout 0.5", None),
            ("seed3-augment", "crop + flip", None),
        ],
    ),
    (
        "Seed 003: Adam vs SGD",
        "cifar10",
        &[("seed3-notsimple", "Adam 1e-3", Some("0.7209")), ("seed3-sgd", "SGD 0.01, momentum 0.9", None)],
    ),
    (
        "Seed 003: max vs average pooling",
        "cifar10",
        &[
            ("seed3-notsimple", "max pooling", Some("0.7209")),
            ("seed3-avgpool", "average pooling", None),
            ("seed3-pooling", "PoolingCNN, max", None),
            ("seed3-pooling-avg", "PoolingCNN, average", None),
        ],
    ),
    (
        "Seed 002: Oxford-IIIT Pet models (test accuracy in the seed)",
        "pets",
        &[
            ("seed2-model1", "3 conv + Flatten + Dense 256", None),
            ("seed2-model2", "+ BatchNorm + global pooling", None),
            ("seed2-model3", "+ dropout (no augmentation)", Some("0.6031")),
            ("seed2-model4", "+ augmentation, lr 1e-3", None),
            ("seed2-model5", "+ augmentation, lr 3e-4", Some("0.6678")),
        ],
    ),
    (
        "Seed 000 / 001: class imbalance strategies (seed 000: F1 0.98 with its best; seed 001: accuracy 0.82)",
        "simpsons",
        &[
            ("seed0-alexnet-elu", "none", None),
            ("seed0-oversample", "oversample to 800", None),
            ("seed0-cap-rotate", "cap 100 + rotate surplus", None),
            ("seed0-min-flip", "min 100 + h/v flips", Some("F1 0.98")),
            ("seed1-augment-to", "size filter + augment to 500", Some("acc 0.82")),
            ("class-weights", "class weights", None),
            ("seed0-adamw", "none, AdamW", None),
            ("seed0-one-vs-rest", "one-vs-rest ensemble", None),
            ("imbalanced-none", "none", None),
            ("imbalanced-oversample", "oversample", None),
            ("imbalanced-cap-rotate", "cap_rotate", None),
            ("imbalanced-min-flip", "min_flip", None),
            ("imbalanced-augment-to", "augment_to", None),
            ("imbalanced-class-weights", "class_weights", None),
            ("imbalanced-weighted-sampler", "weighted_sampler", None),
        ],
    ),
    (
        "Networks without skip connections: seed 003's final network, its recipe vs ours, and airbench-style nets",
        "cifar10",
        &[
            ("seed3-final", "seed 003's network, Adam 1e-3 constant", Some("0.8090")),
            ("seed3-final-tuned", "seed 003's network, our recipe", Some("0.8090")),
            ("vgg", "VGG-style", None),
            ("cpu90-32-128-128", "airbench-style 32/128/128, one-cycle recipe, 16 epochs", None),
            ("cpu90-12ep", "airbench-style 56/224/224, one-cycle recipe, 12 epochs", None),
            ("cpu90", "airbench-style 56/224/224, airbench94's recipe, 10 epochs", None),
            ("airbench", "airbench-style 48/96/192", None),
            ("fast94", "airbench94 layout 64/256/256", None),
        ],
    ),
];

/// Finds `metrics.json` files under `root` (not inside one-vs-rest member folders).
fn find_runs(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    if dir != root && dir.join("metrics.json").is_file() {
        out.push(dir.to_path_buf());
    }
    for path in entries {
        if path.is_dir() && path.file_name().is_some_and(|n| n != "ovr" && n != "plots") {
            find_runs(root, &path, out)?;
        }
    }
    Ok(())
}

fn read_run(root: &Path, dir: &Path) -> Result<RunRow> {
    let metrics: serde_json::Value = {
        let p = dir.join("metrics.json");
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", p.display()))?
    };
    let exp = Experiment::load(&dir.join("config.toml"))?;
    let id = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    let stem = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let f = |k: &str| metrics[k].as_f64().unwrap_or(f64::NAN);
    let augment = if exp.augment.ops.is_empty() {
        "-".to_string()
    } else {
        exp.augment.ops.iter().map(|op| op.name()).collect::<Vec<_>>().join(", ")
    };
    let t = &exp.train;
    Ok(RunRow {
        id,
        stem,
        dir: dir.to_path_buf(),
        dataset: exp.data.dataset.clone(),
        model: if exp.model.name.is_empty() { "-".into() } else { exp.model.name.clone() },
        params: metrics["trainable_params"].as_i64().unwrap_or(0),
        imbalance: exp.data.imbalance.name().to_string(),
        augment,
        optimizer: format!("{:?} {}", t.optimizer, t.lr).to_lowercase(),
        epochs: match metrics["epochs"].as_u64() {
            Some(e) if e as usize != t.epochs => format!("{e}/{}", t.epochs),
            _ => t.epochs.to_string(),
        },
        train_seconds: f("train_seconds"),
        images_per_sec: f("images_per_sec"),
        accuracy: f("accuracy"),
        f1_macro: f("f1_macro"),
        roc_auc: metrics["roc_auc_ovr_macro"].as_f64(),
        mcc: f("mcc"),
        f1_micro: f("f1_micro"),
        target: exp.target.clone(),
        plots: Vec::new(),
    })
}

/// Draws a run's plots into `<run>/plots/`; a plot whose input is missing is skipped.
fn draw_plots(run: &mut RunRow) -> Result<()> {
    let dir = run.dir.join("plots");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let history = run.dir.join("history.csv");
    if let Ok(mut reader) = csv::Reader::from_path(&history) {
        let rows: Vec<plots::HistoryRow> = reader.deserialize().filter_map(|r| r.ok()).collect();
        if !rows.is_empty() {
            let p = dir.join("curves.png");
            plots::curves(&p, &format!("{}: loss and accuracy", run.id), &rows)?;
            run.plots.push(("loss and accuracy".into(), p));
        }
    }
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("metrics.json"))?).unwrap_or_default();
    let classes: Vec<String> = metrics["per_class"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["class"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    if let Some(matrix) = metrics["confusion_matrix"].as_array() {
        let m: Vec<Vec<u64>> = matrix
            .iter()
            .map(|r| r.as_array().map(|r| r.iter().filter_map(|v| v.as_u64()).collect()).unwrap_or_default())
            .collect();
        if m.len() == classes.len() && !m.is_empty() {
            let p = dir.join("confusion.png");
            plots::confusion(&p, &format!("{}: confusion matrix (test)", run.id), &classes, &m)?;
            run.plots.push(("confusion matrix".into(), p));
        }
    }
    if let Some(rows) = metrics["per_class"].as_array() {
        let f1: Vec<(String, f64)> =
            rows.iter().filter_map(|c| Some((c["class"].as_str()?.to_string(), c["f1"].as_f64()?))).collect();
        if !f1.is_empty() {
            let p = dir.join("f1.png");
            plots::per_class_f1(&p, &format!("{}: per-class F1 (test)", run.id), &f1)?;
            run.plots.push(("per-class F1".into(), p));
        }
    }
    if let Ok(text) = std::fs::read_to_string(run.dir.join("class_counts.json")) {
        if let Ok(mut counts) = serde_json::from_str::<Vec<(String, usize)>>(&text) {
            counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let p = dir.join("distribution.png");
            plots::class_distribution(&p, &format!("{}: training images per class", run.id), &counts)?;
            run.plots.push(("class distribution".into(), p));
        }
    }
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

fn duration(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

const HEADER: [&str; 14] = [
    "run",
    "dataset",
    "model",
    "trainable params",
    "imbalance",
    "augmentation",
    "optimizer",
    "epochs",
    "train time",
    "images/s",
    "test accuracy",
    "macro-F1",
    "ROC-AUC (ovr macro)",
    "MCC",
];

fn cells(r: &RunRow) -> Vec<String> {
    vec![
        r.id.clone(),
        r.dataset.clone(),
        r.model.clone(),
        cnnlab_models::thousands(r.params),
        r.imbalance.clone(),
        r.augment.clone(),
        r.optimizer.clone(),
        r.epochs.clone(),
        duration(r.train_seconds),
        format!("{:.0}", r.images_per_sec),
        format!("{:.4}", r.accuracy),
        format!("{:.4}", r.f1_macro),
        opt(r.roc_auc),
        format!("{:.4}", r.mcc),
    ]
}

const TARGET_HEADER: [&str; 5] = ["run", "target", "reached", "train time", "met"];

/// One row per run whose config has a `[target]`.
fn targets(runs: &[RunRow]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for r in runs {
        let Some(t) = &r.target else { continue };
        let mut goals = Vec::new();
        let mut got = Vec::new();
        let mut met = true;
        for (name, goal, value) in [
            ("accuracy", t.accuracy, r.accuracy),
            ("macro-F1", t.f1_macro, r.f1_macro),
            ("micro-F1", t.f1_micro, r.f1_micro),
        ] {
            if let Some(goal) = goal {
                goals.push(format!("{name} >= {goal:.4}"));
                got.push(format!("{name} {value:.4}"));
                met &= value >= goal;
            }
        }
        if let Some(minutes) = t.minutes {
            goals.push(format!("within {minutes} min"));
            met &= r.train_seconds <= minutes * 60.0;
        }
        rows.push(vec![
            r.id.clone(),
            goals.join(", "),
            got.join(", "),
            duration(r.train_seconds),
            if met { "yes" } else { "NO" }.to_string(),
        ]);
    }
    rows
}

/// The comparison tables that have at least one run: (title, rows of cells).
fn comparisons(runs: &[RunRow]) -> Vec<(String, Vec<Vec<String>>)> {
    let mut out = Vec::new();
    for (title, seed_dataset, entries) in COMPARISONS {
        let mut rows = Vec::new();
        for (stem, what, published) in *entries {
            for r in runs.iter().filter(|r| r.stem == *stem) {
                rows.push(vec![
                    r.id.clone(),
                    what.to_string(),
                    format!("{:.4}", r.accuracy),
                    format!("{:.4}", r.f1_macro),
                    duration(r.train_seconds),
                    // The seed's number is for its own dataset only.
                    published.filter(|_| r.dataset == *seed_dataset).unwrap_or("-").to_string(),
                ]);
            }
        }
        if !rows.is_empty() {
            out.push((title.to_string(), rows));
        }
    }
    out
}

const COMPARISON_HEADER: [&str; 6] = ["run", "what", "test accuracy", "macro-F1", "train time", "the seed's number"];

fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in rows {
        let _ = writeln!(s, "| {} |", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
    }
    s
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table>\n<tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", html_escape(h));
    }
    s.push_str("</tr>\n");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", html_escape(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    s
}

/// Writes REPORT.md and report.html into `root`; returns the number of runs.
pub(crate) fn write_report(root: &Path) -> Result<usize> {
    anyhow::ensure!(root.is_dir(), "{} is not a folder of runs", root.display());
    let mut dirs = Vec::new();
    find_runs(root, root, &mut dirs)?;
    let mut runs = Vec::new();
    for dir in &dirs {
        match read_run(root, dir) {
            Ok(mut run) => {
                draw_plots(&mut run)?;
                runs.push(run);
            }
            Err(e) => tracing::warn!("skipping {}: {e:#}", dir.display()),
        }
    }
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let table: Vec<Vec<String>> = runs.iter().map(cells).collect();
    let comps = comparisons(&runs);
    let goals = targets(&runs);

    let mut md = String::from("# cnnlab report\n\n");
    let _ = writeln!(md, "{} finished runs under `{}`, written by `cnnlab report`.\n", runs.len(), root.display());
    md.push_str(&md_table(&HEADER, &table));
    if !goals.is_empty() {
        let _ = write!(md, "\n## Targets\n\n{}", md_table(&TARGET_HEADER, &goals));
    }
    for (title, rows) in &comps {
        let _ = write!(md, "\n## {title}\n\n{}", md_table(&COMPARISON_HEADER, rows));
    }
    md.push_str("\n## Runs\n");
    for r in &runs {
        let _ = writeln!(md, "\n### {}\n", r.id);
        for (what, p) in &r.plots {
            let _ = writeln!(md, "![{what}]({})", rel(p));
        }
    }

    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cnnlab report</title>\n<style>\
         body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eef}\
         img{max-width:100%;margin:4px;border:1px solid #ddd}</style></head><body>\n<h1>cnnlab report</h1>\n",
    );
    let _ = writeln!(
        html,
        "<p>{} finished runs under <code>{}</code>.</p>",
        runs.len(),
        html_escape(&root.display().to_string())
    );
    html.push_str(&html_table(&HEADER, &table));
    if !goals.is_empty() {
        let _ = write!(html, "<h2>Targets</h2>\n{}", html_table(&TARGET_HEADER, &goals));
    }
    for (title, rows) in &comps {
        let _ = write!(html, "<h2>{}</h2>\n{}", html_escape(title), html_table(&COMPARISON_HEADER, rows));
    }
    html.push_str("<h2>Runs</h2>\n");
    for r in &runs {
        let _ = writeln!(html, "<h3>{}</h3>\n<div>", html_escape(&r.id));
        for (what, p) in &r.plots {
            let _ = writeln!(html, "<img src=\"{}\" alt=\"{}\">", html_escape(&rel(p)), html_escape(what));
        }
        html.push_str("</div>\n");
    }
    html.push_str("</body></html>\n");

    for (name, text) in [("REPORT.md", md), ("report.html", html)] {
        let path = root.join(name);
        let tmp = root.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(runs.len())
}
