//! `cnnlab report RUNS_DIR`: every finished run under RUNS_DIR compared in one table,
//! the seeds' comparisons with their published numbers beside ours, and per-run plots;
//! written as RUNS_DIR/REPORT.md and RUNS_DIR/report.html (PNG files next to each run,
//! linked relatively, so both open from disk).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cnnlab_run::{files, FinalMetrics, RunDir};
use rayon::prelude::*;
use serde::Deserialize;

use crate::compare::{self, Evidence};
use crate::experiment::{Experiment, Target};
use crate::plots;
use cnnlab_metrics::stats::{self, Bootstrap, Estimate, Metric};

/// One finished run, as the report shows it.
#[derive(Debug, Clone)]
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
    /// Whether the run had a validation split (`data.val_fraction > 0`); without one
    /// its per-epoch evaluation was on the test set.
    has_val: bool,
    train_seconds: f64,
    images_per_sec: f64,
    pub(crate) accuracy: f64,
    pub(crate) f1_macro: f64,
    roc_auc: Option<f64>,
    mcc: f64,
    f1_micro: f64,
    target: Option<Target>,
    plots: Vec<(String, PathBuf)>,
    metrics: FinalMetrics,
    /// What the run trained, beyond its data and length: see [`recipe`].
    recipe: toml::Value,
    /// The backbone and weights a fine-tuned run started from, e.g.
    /// `efficientnet_lite0 from efficientnet_lite0`; `None` from scratch.
    start: Option<String>,
    /// The seed of a replicate (`<run>/seed-<k>/`); `None` for a single run.
    seed: Option<u64>,
    /// Seeds merged into this row (1 for a single run).
    n_seeds: usize,
    /// The seeds averaged into this run's predictions (`[train] ensemble`); 0 if none.
    ensemble: usize,
    /// Where [`Evidence::load`] finds this row's predictions: the run folder, or the
    /// folder of its seeds.
    evidence_dir: PathBuf,
    /// Test accuracy and macro-F1 with 95% intervals (bootstrap over the test set, or
    /// t over seeds); `None` when the predictions could not be read.
    intervals: Option<(Estimate, Estimate)>,
}

/// `configs/comparisons.toml`: the seeds' comparisons, as tables of experiments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Comparisons {
    comparison: Vec<Comparison>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Comparison {
    title: String,
    /// The dataset the seed's numbers are on.
    dataset: String,
    /// The metric of the difference and verdict columns (`cnnlab compare --metric`).
    #[serde(default = "default_metric")]
    metric: String,
    rows: Vec<ComparisonRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ComparisonRow {
    /// A config stem, `configs/<dataset>/<run>.toml`: every finished run of that name
    /// and of that config's recipe is listed (a run of the same name on another dataset
    /// that trains another way is not what `what` describes).
    run: String,
    what: String,
    /// The seed's own number.
    seed: Option<String>,
    /// The recipe of the config the row names in its table's dataset folder, when that
    /// file exists and loads.
    #[serde(skip)]
    recipe: Option<toml::Value>,
}

/// The metric a comparison table tests its rows on: accuracy unless it says otherwise.
fn default_metric() -> String {
    "accuracy".to_owned()
}

/// Reads the comparisons file; a row naming no config under its folder's `<group>/`
/// folders is an error with the file and line.
fn read_comparisons(path: &Path) -> Result<Vec<Comparison>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed: Comparisons = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(0, |s| text[..s.start].matches('\n').count() + 1);
        anyhow::anyhow!("{}:{line}: {}", path.display(), e.message().trim())
    })?;
    let mut parsed = parsed;
    let configs = path.parent().unwrap_or(Path::new("."));
    for table in &mut parsed.comparison {
        for row in &mut table.rows {
            let config = configs.join(&table.dataset).join(format!("{}.toml", row.run));
            row.recipe = config
                .is_file()
                .then(|| Experiment::from_file(&config).and_then(|e| recipe(&e)))
                .and_then(|r| r.map_err(|e| tracing::warn!("comparison row `{}`: {e:#}", row.run)).ok());
        }
    }
    for table in &parsed.comparison {
        if Metric::from_name(&table.metric).is_none() {
            let line = line_of(&text, &table.metric);
            anyhow::bail!(
                "{}:{line}: metric `{}` is not one of {}",
                path.display(),
                table.metric,
                Metric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    for row in parsed.comparison.iter().flat_map(|c| &c.rows) {
        let pattern = configs.join("*").join(format!("{}.toml", row.run));
        let found = glob_one(&pattern);
        if !found {
            let line = line_of(&text, &row.run);
            anyhow::bail!(
                "{}:{line}: comparison row `{}` names no experiment (no {})",
                path.display(),
                row.run,
                pattern.display()
            );
        }
    }
    Ok(parsed.comparison)
}

/// The 1-based line of `text` holding the string value `"value"` (0 when none does).
fn line_of(text: &str, value: &str) -> usize {
    let needle = format!("\"{value}\"");
    text.lines().position(|l| l.contains(&needle)).map_or(0, |l| l + 1)
}

/// Whether `dir/*/name` exists for a pattern of that form.
fn glob_one(pattern: &Path) -> bool {
    let (Some(name), Some(root)) = (pattern.file_name(), pattern.parent().and_then(Path::parent)) else {
        return false;
    };
    std::fs::read_dir(root).is_ok_and(|entries| entries.filter_map(|e| e.ok()).any(|e| e.path().join(name).is_file()))
}

/// Finds `metrics.json` files under `root` (not inside a run's one-vs-rest member
/// folders or plots, nor the seeds of an ensemble: the ensemble's folder is the run).
fn find_runs(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    if dir != root && RunDir::new(dir).has(files::METRICS) {
        out.push(dir.to_path_buf());
        if !compare::seed_dirs(dir).is_empty() {
            return Ok(());
        }
    }
    // A run's own `ovr/` (its member networks) and `plots/` are not runs; a group
    // folder that happens to be named so is searched like any other.
    let is_run = RunDir::new(dir).has(files::CONFIG);
    for path in entries {
        let own = is_run && path.file_name().is_some_and(|n| n == files::OVR || n == files::PLOTS);
        if path.is_dir() && !own {
            find_runs(root, &path, out)?;
        }
    }
    Ok(())
}

fn read_run(root: &Path, dir: &Path) -> Result<RunRow> {
    let run = RunDir::new(dir);
    let metrics = run.read_metrics()?;
    let exp = Experiment::from_file(&run.file(files::CONFIG))?;
    let id = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    let seed = compare::seed_of(dir);
    // A replicate's experiment is its parent folder's.
    let named = if seed.is_some() { dir.parent().unwrap_or(dir) } else { dir };
    let stem = named.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let augment = if exp.augment.ops.is_empty() {
        "-".to_string()
    } else {
        exp.augment.ops.iter().map(|op| op.name()).collect::<Vec<_>>().join(", ")
    };
    let t = &exp.train;
    let r = &metrics.report;
    Ok(RunRow {
        id,
        stem,
        dir: dir.to_path_buf(),
        dataset: exp.data.dataset.clone(),
        model: if exp.model.name.is_empty() { "-".into() } else { exp.model.name.clone() },
        params: metrics.trainable_params,
        imbalance: exp.data.imbalance.name().to_string(),
        augment,
        optimizer: format!("{:?} {}", t.optimizer, t.lr).to_lowercase(),
        epochs: epochs_cell(metrics.epochs, t.epochs, t.early_stopping.is_some()),
        has_val: exp.data.val_fraction > 0.0,
        train_seconds: metrics.train_seconds,
        images_per_sec: metrics.images_per_sec,
        accuracy: r.accuracy,
        f1_macro: r.f1_macro,
        roc_auc: r.roc_auc_ovr_macro,
        mcc: r.mcc,
        f1_micro: r.f1_micro,
        target: exp.target.clone(),
        plots: Vec::new(),
        metrics,
        recipe: recipe(&exp)?,
        start: exp.model.pretrained.as_ref().map(|w| match exp.model.backbone {
            Some(b) => format!("{} from {w}", b.name()),
            None => w.clone(),
        }),
        seed,
        n_seeds: 1,
        ensemble: if exp.train.ensemble { exp.train.seeds.len() } else { 0 },
        evidence_dir: named.to_path_buf(),
        intervals: None,
    })
}

/// One row per experiment: the seed replicates of a `<run>/seed-<k>/` set merge into
/// one row (id without the seed, the means of accuracy, macro-F1 and time, the first
/// seed's plots and details). Then each row's intervals.
fn merge_replicates(root: &Path, runs: Vec<RunRow>, boot: &Bootstrap) -> Vec<RunRow> {
    let mut out: Vec<RunRow> = Vec::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let slot = r.seed.and_then(|_| out.iter().position(|o| o.seed.is_some() && o.evidence_dir == r.evidence_dir));
        match slot {
            Some(j) => members[j].push(i),
            None => {
                members.push(vec![i]);
                out.push(r.clone());
            }
        }
    }
    out.par_iter_mut().zip(&members).for_each(|(row, idx)| {
        if row.seed.is_some() {
            let mean = |f: &dyn Fn(&RunRow) -> f64| idx.iter().map(|&i| f(&runs[i])).sum::<f64>() / idx.len() as f64;
            row.accuracy = mean(&|r| r.accuracy);
            row.f1_macro = mean(&|r| r.f1_macro);
            row.f1_micro = mean(&|r| r.f1_micro);
            row.mcc = mean(&|r| r.mcc);
            row.train_seconds = mean(&|r| r.train_seconds);
            row.images_per_sec = mean(&|r| r.images_per_sec);
            row.roc_auc = idx.iter().map(|&i| runs[i].roc_auc).sum::<Option<f64>>().map(|s| s / idx.len() as f64);
            row.n_seeds = idx.len();
            row.id = row.evidence_dir.strip_prefix(root).unwrap_or(&row.evidence_dir).display().to_string();
        }
        row.intervals = match Evidence::load(&row.evidence_dir)
            .and_then(|e| Ok((e.estimate(Metric::Accuracy, boot)?, e.estimate(Metric::F1Macro, boot)?)))
        {
            Ok(ci) => Some(ci),
            Err(e) => {
                tracing::warn!("no intervals for {}: {e:#}", row.id);
                None
            }
        };
    });
    out
}

const CONFUSED_HEADER: [&str; 4] = ["true", "predicted", "count", "share of the true class"];

/// The run's five most confused class pairs (its most_confused.csv), as table rows.
fn most_confused_rows(dir: &Path) -> Vec<Vec<String>> {
    let path = dir.join(files::MOST_CONFUSED);
    if !path.is_file() {
        return Vec::new();
    }
    match crate::inspect::read_most_confused(&path) {
        Ok(rows) => rows
            .iter()
            .take(5)
            .map(|c| {
                let share = format!("{:.1}%", c.share * 100.0);
                vec![c.true_class.clone(), c.predicted.clone(), c.count.to_string(), share]
            })
            .collect(),
        Err(e) => {
            tracing::warn!("{e:#}");
            Vec::new()
        }
    }
}

/// The top-loss grid's tooltip: each picture's file, true and predicted class.
fn top_losses_title(dir: &Path) -> String {
    let Ok(rows) = cnnlab_run::read_top_losses(&dir.join(files::TOP_LOSSES)) else { return "top losses".into() };
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            format!("{}. {}: true {}, predicted {} ({:.4})", r.rank, r.id, r.true_class, r.predicted, r.p_predicted)
        })
        .collect();
    lines.join("\n")
}

const FINETUNE_HEADER: [&str; 7] = ["group", "run", "start", "accuracy", "macro-F1", "train time", "images/s"];

/// For each group of runs (the first folder of their id: `pets`, `simpsons`) that
/// has both, the best run from scratch (by accuracy) beside every fine-tuned one.
fn scratch_vs_finetuned(runs: &[RunRow]) -> Vec<Vec<String>> {
    let group = |r: &RunRow| r.id.split('/').next().unwrap_or_default().to_owned();
    let mut groups: Vec<String> = runs.iter().map(group).collect();
    groups.sort();
    groups.dedup();
    let mut rows = Vec::new();
    for g in groups {
        let members: Vec<&RunRow> = runs.iter().filter(|r| group(r) == g).collect();
        let scratch = members.iter().filter(|r| r.start.is_none()).max_by(|a, b| a.accuracy.total_cmp(&b.accuracy));
        let tuned: Vec<&&RunRow> = members.iter().filter(|r| r.start.is_some()).collect();
        let Some(scratch) = scratch else { continue };
        if tuned.is_empty() {
            continue;
        }
        for r in std::iter::once(scratch).chain(tuned) {
            rows.push(vec![
                g.clone(),
                r.id.clone(),
                r.start.clone().unwrap_or_else(|| "scratch (best)".to_owned()),
                format!("{:.4}", r.accuracy),
                format!("{:.4}", r.f1_macro),
                duration(r.train_seconds),
                format!("{:.0}", r.images_per_sec),
            ]);
        }
    }
    rows
}

/// The report's epochs cell: the epochs trained, and why they differ from the config's
/// when they do (early stopping; a run trained on with `--resume --epochs`).
fn epochs_cell(trained: usize, configured: usize, early_stopping: bool) -> String {
    use std::cmp::Ordering::*;
    match trained.cmp(&configured) {
        Equal => trained.to_string(),
        Less if early_stopping => format!("{trained} of {configured} (early stop)"),
        Less => format!("{trained} of {configured} (stopped)"),
        Greater => format!("{trained} (config: {configured})"),
    }
}

/// What a run trained, as a comparable value: the experiment without its data, its
/// model's display name, its epoch count and its target. Two runs with equal recipes
/// trained the same network the same way, on whatever data each had.
fn recipe(exp: &Experiment) -> Result<toml::Value> {
    let mut value = toml::Value::try_from(exp).context("serializing the experiment")?;
    if let Some(table) = value.as_table_mut() {
        table.remove("data");
        table.remove("target");
        for (section, key) in [("model", "name"), ("train", "epochs")] {
            if let Some(t) = table.get_mut(section).and_then(toml::Value::as_table_mut) {
                t.remove(key);
            }
        }
    }
    Ok(value)
}

/// Draws a run's plots into `<run>/plots/`; a plot whose input is missing is skipped.
fn draw_plots(run: &mut RunRow) -> Result<()> {
    let dir = RunDir::new(&run.dir);
    let plots_dir = dir.file(files::PLOTS);
    std::fs::create_dir_all(&plots_dir).with_context(|| format!("creating {}", plots_dir.display()))?;
    let history = if dir.has(files::HISTORY) { dir.read_history()? } else { Vec::new() };
    if !history.is_empty() {
        let p = plots_dir.join(files::plots::CURVES);
        let epochs: Vec<plots::Epoch> = history
            .iter()
            .map(|r| plots::Epoch {
                epoch: r.epoch,
                loss: (r.train_loss, r.val_loss),
                accuracy: (r.train_acc, r.val_acc),
            })
            .collect();
        let (evaluated, title) = match run.has_val {
            true => ("val", format!("{}: loss and accuracy", run.id)),
            false => {
                ("test", format!("{}: loss and accuracy (no validation split: each epoch on the test set)", run.id))
            }
        };
        plots::curves(&p, &title, &epochs, evaluated)?;
        run.plots.push(("loss and accuracy".into(), p));
    }
    let report = &run.metrics.report;
    let classes: Vec<String> = report.per_class.iter().map(|c| c.class.clone()).collect();
    let m = &report.confusion_matrix;
    if m.len() == classes.len() && !m.is_empty() {
        let p = plots_dir.join(files::plots::CONFUSION);
        plots::confusion(&p, &format!("{}: confusion matrix (test)", run.id), &classes, m)?;
        run.plots.push(("confusion matrix".into(), p));
    }
    let f1: Vec<(String, f64)> = report.per_class.iter().map(|c| (c.class.clone(), c.f1)).collect();
    if !f1.is_empty() {
        let p = plots_dir.join(files::plots::F1);
        plots::per_class_f1(&p, &format!("{}: per-class F1 (test)", run.id), &f1)?;
        run.plots.push(("per-class F1".into(), p));
    }
    if dir.has(files::CLASS_COUNTS) {
        let mut counts = dir.read_class_counts()?;
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let p = plots_dir.join(files::plots::DISTRIBUTION);
        plots::class_distribution(&p, &format!("{}: training images per class", run.id), &counts)?;
        run.plots.push(("class distribution".into(), p));
    }
    // Drawn by `cnnlab train` from the test images, which the report does not load.
    for (what, file) in [("top losses", files::plots::TOP_LOSSES), ("Grad-CAM", files::plots::GRADCAM)] {
        let p = plots_dir.join(file);
        if p.is_file() {
            run.plots.push((what.into(), p));
        }
    }
    Ok(())
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// A metric's name as the tables' headers say it (`f1_macro` -> `macro-F1`).
fn metric_title(metric: &str) -> &str {
    match metric {
        "f1_macro" => "macro-F1",
        "f1_micro" => "micro-F1",
        "f1_weighted" => "weighted F1",
        "balanced_accuracy" => "balanced accuracy",
        "roc_auc" => "ROC AUC",
        "mcc" => "MCC",
        other => other,
    }
}

fn duration(s: f64) -> String {
    if !s.is_finite() {
        "-".into()
    } else if s < 9.95 {
        // A smoke run's epochs take under a second: "0 s" would say nothing.
        format!("{s:.1} s")
    } else if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

/// The run table: what a reader compares at a glance. The rest of each run's
/// settings and scores are in its own section ([`DETAIL_HEADER`]).
const HEADER: [&str; 8] =
    ["run", "dataset", "model", "epochs", "train time", "test accuracy [95% CI]", "macro-F1 [95% CI]", "seeds"];

fn cells(r: &RunRow) -> Vec<String> {
    vec![
        r.id.clone(),
        r.dataset.clone(),
        r.model.clone(),
        r.epochs.clone(),
        duration(r.train_seconds),
        with_interval(r.accuracy, r.intervals.map(|i| i.0)),
        with_interval(r.f1_macro, r.intervals.map(|i| i.1)),
        if r.ensemble > 0 { format!("ensemble of {}", r.ensemble) } else { r.n_seeds.to_string() },
    ]
}

/// A run's details, one row under its heading (augmentation last: it may be long).
const DETAIL_HEADER: [&str; 8] = [
    "trainable params",
    "optimizer",
    "imbalance",
    "images/s",
    "peak RSS",
    "ROC-AUC (ovr macro)",
    "MCC",
    "augmentation",
];

fn detail_cells(r: &RunRow) -> Vec<String> {
    vec![
        cnnlab_run::thousands(r.params),
        r.optimizer.clone(),
        r.imbalance.clone(),
        format!("{:.0}", r.images_per_sec),
        r.metrics.peak_rss_mb.map_or_else(|| "-".to_owned(), |mb| format!("{mb:.0} MB")),
        opt(r.roc_auc),
        format!("{:.4}", r.mcc),
        r.augment.clone(),
    ]
}

/// Under the run table: what its speed columns can and cannot say.
const SPEED_NOTE: &str = "Train time (and images/s in each run's details) is what each run measured where it \
    trained, under whatever else ran there: two trainings at once on 2 cores took 5x longer than one after the \
    other. Compare speed between runs trained one at a time on one idle machine, or with `cargo xtask bench` \
    (cnnlab and PyTorch alternated on the same machine).";

/// What a run's section shows beside its plots, when some are not its own or absent.
fn plots_note(r: &RunRow, rel: &dyn Fn(&Path) -> String) -> Option<String> {
    if r.ensemble > 0 {
        return Some(format!(
            "An ensemble trains no network of its own: it has no training curves, and its top losses and Grad-CAM \
             are its seeds' (each in `{}/seed-<k>/plots/`). Here: the ensemble's test confusion matrix and \
             per-class F1.",
            rel(&r.evidence_dir)
        ));
    }
    (r.n_seeds > 1).then(|| {
        format!(
            "The plots are seed {}'s, the first of {} seeds (the table's values are their mean); every seed's own \
             are in `{}/seed-<k>/plots/`.",
            r.seed.unwrap_or(0),
            r.n_seeds,
            rel(&r.evidence_dir)
        )
    })
}

/// "0.8123 [0.8046, 0.8199]", or the bare value without an interval.
fn with_interval(value: f64, ci: Option<Estimate>) -> String {
    match ci {
        Some(ci) if !ci.low.is_nan() => compare::interval_text(&ci),
        _ => format!("{value:.4}"),
    }
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

/// A comparison table with at least one run: its rows of cells, and the runs that
/// share a row's name but not its recipe (listed under the table, not in it).
struct ComparisonTable {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    other_recipes: Vec<String>,
    /// How the difference and verdict columns were made.
    method_note: String,
}

/// The comparison tables that have at least one run. Each run is compared with its
/// group's baseline (the first row of the table with a run in the same runs folder
/// group, e.g. `fashion-mnist`): the difference on the table's metric with its 95%
/// interval, and a verdict after Holm's correction over the table's comparisons.
fn comparisons(tables: &[Comparison], runs: &[RunRow], boot: &Bootstrap) -> Vec<ComparisonTable> {
    let group = |r: &RunRow| r.id.split('/').next().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for table in tables {
        let metric = Metric::from_name(&table.metric).unwrap_or(Metric::Accuracy);
        let mut listed: Vec<(&ComparisonRow, &RunRow)> = Vec::new();
        let mut other_recipes = Vec::new();
        for entry in &table.rows {
            let (same, other): (Vec<&RunRow>, Vec<&RunRow>) = runs
                .iter()
                .filter(|r| r.stem == entry.run)
                .partition(|r| entry.recipe.as_ref().is_none_or(|recipe| *recipe == r.recipe));
            other_recipes.extend(other.iter().map(|r| r.id.clone()));
            listed.extend(same.into_iter().map(|r| (entry, r)));
        }
        if listed.is_empty() {
            continue;
        }
        // Each listed run against its group's first listed run; every run's predictions
        // are read once per table (the rows' own intervals are merge_replicates').
        let evidence: Vec<Result<Evidence>> = listed.iter().map(|(_, r)| Evidence::load(&r.evidence_dir)).collect();
        let loaded = |i: usize| evidence[i].as_ref().map_err(|e| anyhow::anyhow!("{e:#}"));
        let outcomes: Vec<Option<Result<compare::Difference>>> = listed
            .iter()
            .enumerate()
            .map(|(i, (_, r))| {
                let base = listed.iter().position(|(_, b)| group(b) == group(r))?;
                (base != i).then(|| compare::difference(loaded(base)?, loaded(i)?, metric, boot))
            })
            .collect();
        let p_values: Vec<f64> = outcomes
            .iter()
            .map(|o| match o {
                Some(Ok(o)) => o.p_value,
                _ => f64::NAN,
            })
            .collect();
        let adjusted = stats::holm(&p_values, ALPHA);
        let tested = p_values.iter().filter(|p| !p.is_nan()).count();
        let mut rows = Vec::new();
        for (((entry, r), outcome), holm) in listed.iter().zip(&outcomes).zip(&adjusted) {
            let (difference, verdict) = match outcome {
                None => ("baseline".to_owned(), "-".to_owned()),
                Some(Ok(o)) => {
                    (compare::difference_text(&o.difference), compare::verdict(holm.adjusted, ALPHA, o.test, true))
                }
                Some(Err(e)) => ("-".to_owned(), format!("not compared: {}", short_reason(e))),
            };
            rows.push(vec![
                r.id.clone(),
                entry.what.clone(),
                with_interval(r.accuracy, r.intervals.map(|i| i.0)),
                with_interval(r.f1_macro, r.intervals.map(|i| i.1)),
                duration(r.train_seconds),
                // The seed's number is for its own dataset only.
                entry.seed.clone().filter(|_| r.dataset == table.dataset).unwrap_or_else(|| "-".into()),
                difference,
                verdict,
            ]);
        }
        let mut header: Vec<String> = COMPARISON_HEADER.iter().map(|h| h.to_string()).collect();
        header.push(format!("{} vs baseline [95% CI]", metric_title(metric.name())));
        header.push("verdict (0.05, Holm)".to_owned());
        let method_note = format!(
            "Intervals are 95%: a bootstrap over the test set for one run ({} resamples), Student-t over seeds for \
             replicates. The baseline is the first row of each runs group; differences are row minus baseline on \
             {metric}, tested with McNemar (accuracy) or the paired bootstrap for single runs on the same test \
             set and with Welch's t-test over seeds; verdicts at 0.05 after Holm's correction over this table's {} \
             comparison{}.",
            boot.resamples,
            tested,
            if tested == 1 { "" } else { "s" }
        );
        out.push(ComparisonTable { title: table.title.clone(), header, rows, other_recipes, method_note });
    }
    out
}

/// The family-wise significance level of the report's verdicts.
const ALPHA: f64 = 0.05;

/// Why two runs were not compared, in a few words for a table cell.
fn short_reason(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    if text.contains("not the same test set") {
        "different test sets".to_owned()
    } else if text.contains("not alike") {
        "one run against seed replicates".to_owned()
    } else if text.contains("Welch") {
        "needs two seeds a side".to_owned()
    } else {
        text
    }
}

/// The sentence under a comparison table naming the runs left out of it.
fn other_recipes_note(ids: &[String]) -> Option<String> {
    (!ids.is_empty()).then(|| {
        format!(
            "Not listed: {} (same name, trained another way than the rows describe).",
            ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
        )
    })
}

const COMPARISON_HEADER: [&str; 6] =
    ["run", "what", "test accuracy [95% CI]", "macro-F1 [95% CI]", "train time", "the seed's number"];

/// Under the runs table: what the brackets are.
const INTERVALS_NOTE: &str = "Brackets are 95% intervals: a bootstrap over the test set (1000 resamples) for one \
     run; for seed replicates (`seeds` > 1) the values are means over seeds with a Student-t interval. An \
     ensemble (`ensemble = true`) is one model, its seeds' probabilities averaged: bootstrap, and its train time \
     is its seeds' sum.";

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

/// `cnnlab report RUNS [--comparisons FILE]`: writes both files and says where.
pub fn run(root: &Path, comparisons_file: &Path) -> Result<()> {
    let n = write_report(root, comparisons_file)?;
    println!("{}: {} and {}", finished_runs(n), root.join("REPORT.md").display(), root.join("report.html").display());
    Ok(())
}

/// "1 finished run", "3 finished runs".
pub(crate) fn finished_runs(n: usize) -> String {
    format!("{n} finished run{}", if n == 1 { "" } else { "s" })
}

/// What the report says, collected once; [`markdown`] and [`html_page`] render it.
struct Content<'a> {
    root: &'a Path,
    runs: &'a [RunRow],
    table: &'a [Vec<String>],
    comps: &'a [ComparisonTable],
    goals: &'a [Vec<String>],
    finetuned: &'a [Vec<String>],
}

/// REPORT.md.
fn markdown(c: &Content<'_>) -> String {
    let (root, runs, table, comps, goals, finetuned) = (c.root, c.runs, c.table, c.comps, c.goals, c.finetuned);
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut md = String::from("# cnnlab report\n\n");
    let _ = writeln!(md, "{} under `{}`, written by `cnnlab report`.\n", finished_runs(runs.len()), root.display());
    md.push_str(&md_table(&HEADER, table));
    let _ = writeln!(md, "\n{INTERVALS_NOTE}\n\n{SPEED_NOTE}");
    if !goals.is_empty() {
        let _ = write!(md, "\n## Targets\n\n{}", md_table(&TARGET_HEADER, goals));
    }
    if !finetuned.is_empty() {
        let _ = write!(md, "\n## From scratch vs fine-tuned\n\n{}", md_table(&FINETUNE_HEADER, finetuned));
    }
    for t in comps {
        let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
        let _ = write!(md, "\n## {}\n\n{}\n{}\n", t.title, md_table(&header, &t.rows), t.method_note);
        if let Some(note) = other_recipes_note(&t.other_recipes) {
            let _ = writeln!(md, "\n{note}");
        }
    }
    md.push_str("\n## Runs\n");
    for r in runs {
        let _ = writeln!(md, "\n### {}\n", r.id);
        md.push_str(&md_table(&DETAIL_HEADER, &[detail_cells(r)]));
        if let Some(note) = plots_note(r, &rel) {
            let _ = writeln!(md, "\n{note}");
        }
        md.push('\n');
        for (what, p) in &r.plots {
            let _ = writeln!(md, "![{what}]({})", rel(p));
        }
        let confused = most_confused_rows(&r.dir);
        if !confused.is_empty() {
            let _ = write!(md, "\nMost confused on the test set:\n\n{}", md_table(&CONFUSED_HEADER, &confused));
        }
    }
    md
}

/// report.html: the same content as [`markdown`], with the plots inline.
fn html_page(c: &Content<'_>) -> String {
    let (root, runs, table, comps, goals, finetuned) = (c.root, c.runs, c.table, c.comps, c.goals, c.finetuned);
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cnnlab report</title>\n<style>\
         body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #bbb;padding:3px 8px;font-size:13px}th{background:#eef}\
         td{white-space:nowrap}td:last-child{white-space:normal}\
         img{max-width:100%;margin:4px;border:1px solid #ddd}</style></head><body>\n<h1>cnnlab report</h1>\n",
    );
    let _ = writeln!(
        html,
        "<p>{} under <code>{}</code>.</p>",
        finished_runs(runs.len()),
        html_escape(&root.display().to_string())
    );
    html.push_str(&html_table(&HEADER, table));
    let _ = writeln!(html, "<p>{}</p>", html_escape(INTERVALS_NOTE));
    let _ = writeln!(html, "<p>{}</p>", html_escape(&SPEED_NOTE.replace('`', "")));
    if !goals.is_empty() {
        let _ = write!(html, "<h2>Targets</h2>\n{}", html_table(&TARGET_HEADER, goals));
    }
    if !finetuned.is_empty() {
        let _ = write!(html, "<h2>From scratch vs fine-tuned</h2>\n{}", html_table(&FINETUNE_HEADER, finetuned));
    }
    for t in comps {
        let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
        let _ = write!(
            html,
            "<h2>{}</h2>\n{}<p>{}</p>\n",
            html_escape(&t.title),
            html_table(&header, &t.rows),
            html_escape(&t.method_note)
        );
        if let Some(note) = other_recipes_note(&t.other_recipes) {
            let _ = writeln!(html, "<p>{}</p>", html_escape(&note.replace('`', "")));
        }
    }
    html.push_str("<h2>Runs</h2>\n");
    for r in runs {
        let _ = writeln!(html, "<h3>{}</h3>", html_escape(&r.id));
        html.push_str(&html_table(&DETAIL_HEADER, &[detail_cells(r)]));
        if let Some(note) = plots_note(r, &rel) {
            let _ = writeln!(html, "<p>{}</p>", html_escape(&note.replace('`', "")));
        }
        html.push_str("<div>\n");
        for (what, p) in &r.plots {
            let title = if what == "top losses" { top_losses_title(&r.dir) } else { what.clone() };
            let _ = writeln!(
                html,
                "<img src=\"{}\" alt=\"{}\" title=\"{}\">",
                html_escape(&rel(p)),
                html_escape(what),
                html_escape(&title)
            );
        }
        html.push_str("</div>\n");
        let confused = most_confused_rows(&r.dir);
        if !confused.is_empty() {
            let _ = write!(html, "<p>Most confused on the test set:</p>\n{}", html_table(&CONFUSED_HEADER, &confused));
        }
    }
    html.push_str("</body></html>\n");
    html
}

/// Writes REPORT.md and report.html into `root`, with the comparison tables of
/// `comparisons` (`configs/comparisons.toml`) when that file exists; returns the
/// number of runs.
fn write_report(root: &Path, comparisons_file: &Path) -> Result<usize> {
    anyhow::ensure!(root.is_dir(), "{} is not a folder of runs", root.display());
    let tables = if comparisons_file.exists() {
        read_comparisons(comparisons_file)?
    } else {
        tracing::info!("no {}: the report has no comparison tables", comparisons_file.display());
        Vec::new()
    };
    let mut dirs = Vec::new();
    find_runs(root, root, &mut dirs)?;
    // Runs are read and drawn in parallel (rayon keeps their order).
    let read: Vec<Result<RunRow>> =
        dirs.par_iter().map(|dir| read_run(root, dir).and_then(|mut run| draw_plots(&mut run).map(|()| run))).collect();
    let mut runs = Vec::new();
    for (dir, run) in dirs.iter().zip(read) {
        // A run whose files do not read (a truncated metrics.json, a garbage row in
        // history.csv) is skipped with a warning naming the file; the others are reported.
        match run {
            Ok(run) => runs.push(run),
            Err(e) => tracing::warn!("skipping {}: {e:#}", dir.display()),
        }
    }
    let boot = Bootstrap { resamples: 1000, ..Bootstrap::default() };
    let runs = merge_replicates(root, runs, &boot);
    let table: Vec<Vec<String>> = runs.iter().map(cells).collect();
    let comps = comparisons(&tables, &runs, &boot);
    let goals = targets(&runs);
    let finetuned = scratch_vs_finetuned(&runs);

    let content = Content { root, runs: &runs, table: &table, comps: &comps, goals: &goals, finetuned: &finetuned };
    let (md, html) = (markdown(&content), html_page(&content));
    for (name, text) in [("REPORT.md", md), ("report.html", html)] {
        cnnlab_run::write_bytes(&root.join(name), text.as_bytes())?;
    }
    Ok(runs.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repos_comparisons_name_existing_configs() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/comparisons.toml");
        let tables = read_comparisons(&file).unwrap();
        assert!(tables.len() >= 5, "{} tables", tables.len());
        assert!(tables
            .iter()
            .any(|t| t.rows.iter().any(|r| r.run == "seed3-final" && r.seed.as_deref() == Some("0.8090"))));
    }

    #[test]
    fn epochs_that_differ_from_the_config_say_why() {
        assert_eq!(epochs_cell(5, 5, false), "5");
        assert_eq!(epochs_cell(3, 5, true), "3 of 5 (early stop)");
        assert_eq!(epochs_cell(3, 5, false), "3 of 5 (stopped)");
        assert_eq!(epochs_cell(3, 2, false), "3 (config: 2)");
    }

    #[test]
    fn run_counts_read_as_english() {
        assert_eq!(finished_runs(1), "1 finished run");
        assert_eq!(finished_runs(2), "2 finished runs");
    }

    #[test]
    fn a_row_naming_no_config_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("cifar10")).unwrap();
        std::fs::write(dir.path().join("cifar10/seed3-final.toml"), "").unwrap();
        let file = dir.path().join("comparisons.toml");
        let text = "[[comparison]]\ntitle = \"t\"\ndataset = \"cifar10\"\nrows = [\n  { run = \"seed3-final\", what = \"a\" },\n  { run = \"seed3-finale\", what = \"b\" },\n]\n";
        std::fs::write(&file, text).unwrap();
        let err = read_comparisons(&file).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:6: comparison row `seed3-finale` names no experiment", file.display())),
            "{err}"
        );
        std::fs::write(&file, text.replace("what = \"b\"", "waht = \"b\"")).unwrap();
        let err = read_comparisons(&file).unwrap_err().to_string();
        assert!(err.contains(":6: unknown field `waht`"), "{err}");
    }
}
