//! What the report says, read once from the run folders and the comparisons file:
//! typed numbers, which `tables.rs` formats and `markdown.rs` and `html.rs` lay out.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cnnlab_metrics::stats::{self, Bootstrap, Estimate, Metric};
use cnnlab_run::recipe::train::OptimizerKind;
use cnnlab_run::{files, Confusion, FinalMetrics, RunDir, TopLossRow};
use rayon::prelude::*;
use serde::Deserialize;

use crate::compare::{self, Evidence, Test};
use crate::experiment::{Experiment, Target};
use crate::plots;

/// Everything the report shows.
pub(super) struct Content<'a> {
    pub(super) root: &'a Path,
    pub(super) runs: Vec<RunRow>,
    pub(super) comparisons: Vec<ComparisonTable>,
    pub(super) targets: Vec<TargetRow>,
    pub(super) finetuned: Vec<FinetuneRow>,
    /// `cnnlab tune`'s studies under the runs folder.
    pub(super) studies: Vec<super::tuning::StudyReport>,
}

/// Reads every finished run under `root` (a run whose files do not read is skipped
/// with a warning naming the file), draws its plots, merges seed replicates and
/// builds the tables. Runs are read, drawn and bootstrapped in parallel (rayon keeps
/// their order).
pub(super) fn collect<'a>(root: &'a Path, tables: &[Comparison], boot: &Bootstrap) -> Result<Content<'a>> {
    let mut dirs = Vec::new();
    find_runs(root, root, &mut dirs)?;
    let read: Vec<Result<RunRow>> =
        dirs.par_iter().map(|dir| read_run(root, dir).and_then(|mut run| draw_plots(&mut run).map(|()| run))).collect();
    let mut runs = Vec::new();
    for (dir, run) in dirs.iter().zip(read) {
        // A truncated metrics.json, a garbage row in history.csv: the others are reported.
        match run {
            Ok(run) => runs.push(run),
            Err(e) => tracing::warn!("skipping {}: {e:#}", dir.display()),
        }
    }
    let runs = merge_replicates(root, runs, boot);
    let comparisons = comparisons(tables, &runs, boot);
    let targets = targets(&runs);
    let finetuned = scratch_vs_finetuned(&runs);
    let mut study_dirs = Vec::new();
    super::tuning::find_studies(root, &mut study_dirs);
    let studies = study_dirs
        .iter()
        .filter_map(|dir| match super::tuning::read_study(root, dir) {
            Ok(study) => Some(study),
            Err(e) => {
                tracing::warn!("skipping the study {}: {e:#}", dir.display());
                None
            }
        })
        .collect();
    Ok(Content { root, runs, comparisons, targets, finetuned, studies })
}

/// One finished run, as the report shows it.
#[derive(Debug, Clone)]
pub(super) struct RunRow {
    /// Path relative to the runs folder, e.g. `cifar10/seed3-final`.
    pub(super) id: String,
    pub(super) stem: String,
    pub(super) dir: PathBuf,
    pub(super) dataset: String,
    pub(super) model: String,
    pub(super) params: i64,
    pub(super) imbalance: String,
    /// The names of its augmentation ops, in order.
    pub(super) augment: Vec<&'static str>,
    pub(super) optimizer: OptimizerKind,
    pub(super) lr: f64,
    pub(super) epochs: Epochs,
    /// Whether the run had a validation split (`data.val_fraction > 0`); without one
    /// its per-epoch evaluation was on the test set.
    pub(super) has_val: bool,
    pub(super) train_seconds: f64,
    pub(super) images_per_sec: f64,
    pub(super) accuracy: f64,
    pub(super) f1_macro: f64,
    pub(super) roc_auc: Option<f64>,
    pub(super) mcc: f64,
    f1_micro: f64,
    pub(super) target: Option<Target>,
    pub(super) plots: Vec<(String, PathBuf)>,
    pub(super) metrics: FinalMetrics,
    /// What the run trained, beyond its data and length: see [`recipe`].
    pub(super) recipe: toml::Value,
    /// The backbone and weights a fine-tuned run started from, e.g.
    /// `efficientnet_lite0 from efficientnet_lite0`; `None` from scratch.
    pub(super) start: Option<String>,
    /// The seed of a replicate (`<run>/seed-<k>/`); `None` for a single run.
    pub(super) seed: Option<u64>,
    /// Seeds merged into this row (1 for a single run).
    pub(super) n_seeds: usize,
    /// The seeds averaged into this run's predictions (`[train] ensemble`); 0 if none.
    pub(super) ensemble: usize,
    /// Where [`Evidence::load`] finds this row's predictions: the run folder, or the
    /// folder of its seeds.
    pub(super) evidence_dir: PathBuf,
    /// Test accuracy and macro-F1 with 95% intervals (bootstrap over the test set, or
    /// t over seeds); `None` when the predictions could not be read.
    pub(super) intervals: Option<(Estimate, Estimate)>,
    /// Its five most confused class pairs (most_confused.csv), when it has them.
    pub(super) confused: Vec<Confusion>,
    /// Its top losses (top_losses.csv), when it has them: the grid's tooltip.
    pub(super) top_losses: Vec<TopLossRow>,
}

/// The epochs a run trained and what its config asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Epochs {
    pub(super) trained: usize,
    pub(super) configured: usize,
    pub(super) early_stopping: bool,
}

/// `configs/comparisons.toml`: the seeds' comparisons, as tables of experiments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Comparisons {
    comparison: Vec<Comparison>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Comparison {
    pub(super) title: String,
    /// The dataset the seed's numbers are on.
    pub(super) dataset: String,
    /// The metric of the difference and verdict columns (`cnnlab compare --metric`).
    #[serde(default = "default_metric")]
    pub(super) metric: String,
    pub(super) rows: Vec<ComparisonRow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ComparisonRow {
    /// A config stem, `configs/<dataset>/<run>.toml`: every finished run of that name
    /// and of that config's recipe is listed (a run of the same name on another dataset
    /// that trains another way is not what `what` describes).
    pub(super) run: String,
    pub(super) what: String,
    /// The seed's own number.
    pub(super) seed: Option<String>,
    /// The recipe of the config the row names in its table's dataset folder, when that
    /// file exists and loads.
    #[serde(skip)]
    pub(super) recipe: Option<toml::Value>,
}

/// The metric a comparison table tests its rows on: accuracy unless it says otherwise.
fn default_metric() -> String {
    "accuracy".to_owned()
}

/// Reads the comparisons file; a row naming no config under its folder's `<group>/`
/// folders is an error with the file and line.
pub(super) fn read_comparisons(path: &Path) -> Result<Vec<Comparison>> {
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
pub(super) fn find_runs(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
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
    // folder that happens to be named so is searched like any other. A study's trials
    // are its tuning section, not rows; its confirmation's seed sets are runs.
    let is_run = RunDir::new(dir).has(files::CONFIG);
    let is_study = dir.join(crate::tune::STUDY_FILE).is_file();
    for path in entries {
        let own = is_run && path.file_name().is_some_and(|n| n == files::OVR || n == files::PLOTS);
        let trial = is_study && path.file_name().is_none_or(|n| n != "confirm");
        if path.is_dir() && !own && !trial {
            find_runs(root, &path, out)?;
        }
    }
    Ok(())
}

pub(super) fn read_run(root: &Path, dir: &Path) -> Result<RunRow> {
    let run = RunDir::new(dir);
    let metrics = run.read_metrics()?;
    let exp = Experiment::from_file(&run.file(files::CONFIG))?;
    let id = dir.strip_prefix(root).unwrap_or(dir).display().to_string();
    let seed = compare::seed_of(dir);
    // A replicate's experiment is its parent folder's.
    let named = if seed.is_some() { dir.parent().unwrap_or(dir) } else { dir };
    let stem = named.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
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
        augment: exp.augment.ops.iter().map(|op| op.name()).collect(),
        optimizer: t.optimizer,
        lr: t.lr,
        epochs: Epochs { trained: metrics.epochs, configured: t.epochs, early_stopping: t.early_stopping.is_some() },
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
        confused: most_confused(dir),
        top_losses: cnnlab_run::read_top_losses(&dir.join(files::TOP_LOSSES)).unwrap_or_default(),
    })
}

/// One row per experiment: the seed replicates of a `<run>/seed-<k>/` set merge into
/// one row (id without the seed, the means of accuracy, macro-F1 and time, the first
/// seed's plots and details). Then each row's intervals.
pub(super) fn merge_replicates(root: &Path, runs: Vec<RunRow>, boot: &Bootstrap) -> Vec<RunRow> {
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

/// A comparison table with at least one run: its rows, and the runs that share a
/// row's name but not its recipe (listed under the table, not in it).
pub(super) struct ComparisonTable {
    pub(super) title: String,
    /// What the difference and verdict columns are on.
    pub(super) metric: Metric,
    pub(super) rows: Vec<ComparedRun>,
    pub(super) other_recipes: Vec<String>,
    /// The bootstrap's resamples, and how many rows were tested (Holm's family).
    pub(super) resamples: usize,
    pub(super) tested: usize,
}

/// One run of a comparison table.
pub(super) struct ComparedRun {
    pub(super) id: String,
    /// The comparisons file's words for the row.
    pub(super) what: String,
    /// Test accuracy and macro-F1, each with its 95% interval when there is one.
    pub(super) accuracy: (f64, Option<Estimate>),
    pub(super) f1_macro: (f64, Option<Estimate>),
    pub(super) train_seconds: f64,
    /// The seed document's own number, on the seed's dataset only.
    pub(super) seed_number: Option<String>,
    pub(super) outcome: Outcome,
}

/// A row against its group's baseline.
pub(super) enum Outcome {
    /// The row is its group's baseline.
    Baseline,
    /// Row minus baseline on the table's metric, its test and Holm-adjusted p.
    Tested { difference: Estimate, adjusted_p: f64, test: Test },
    /// Why the two could not be compared, in a few words.
    NotCompared(String),
}

/// The family-wise significance level of the report's verdicts.
pub(super) const ALPHA: f64 = 0.05;

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

/// A run whose config has a `[target]`: each goal against what it reached.
pub(super) struct TargetRow {
    pub(super) id: String,
    /// (metric title, goal, reached) for each metric goal.
    pub(super) goals: Vec<(&'static str, f64, f64)>,
    /// The goal on training time, in minutes.
    pub(super) minutes: Option<f64>,
    pub(super) train_seconds: f64,
    pub(super) met: bool,
}

/// One row per run whose config has a `[target]`.
fn targets(runs: &[RunRow]) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    for r in runs {
        let Some(t) = &r.target else { continue };
        let goals: Vec<(&'static str, f64, f64)> = [
            ("accuracy", t.accuracy, r.accuracy),
            ("macro-F1", t.f1_macro, r.f1_macro),
            ("micro-F1", t.f1_micro, r.f1_micro),
        ]
        .into_iter()
        .filter_map(|(name, goal, value)| goal.map(|goal| (name, goal, value)))
        .collect();
        let met = goals.iter().all(|&(_, goal, value)| value >= goal)
            && t.minutes.is_none_or(|minutes| r.train_seconds <= minutes * 60.0);
        rows.push(TargetRow { id: r.id.clone(), goals, minutes: t.minutes, train_seconds: r.train_seconds, met });
    }
    rows
}

/// A run of a group that has runs from scratch and fine-tuned ones.
pub(super) struct FinetuneRow {
    pub(super) group: String,
    pub(super) id: String,
    /// The backbone and weights it started from; `None` for the best run from scratch.
    pub(super) start: Option<String>,
    pub(super) accuracy: f64,
    pub(super) f1_macro: f64,
    pub(super) train_seconds: f64,
    pub(super) images_per_sec: f64,
}

/// For each group of runs (the first folder of their id: `pets`, `simpsons`) that
/// has both, the best run from scratch (by accuracy) beside every fine-tuned one.
fn scratch_vs_finetuned(runs: &[RunRow]) -> Vec<FinetuneRow> {
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
            rows.push(FinetuneRow {
                group: g.clone(),
                id: r.id.clone(),
                start: r.start.clone(),
                accuracy: r.accuracy,
                f1_macro: r.f1_macro,
                train_seconds: r.train_seconds,
                images_per_sec: r.images_per_sec,
            });
        }
    }
    rows
}

/// The run's five most confused class pairs (its most_confused.csv).
fn most_confused(dir: &Path) -> Vec<Confusion> {
    let path = dir.join(files::MOST_CONFUSED);
    if !path.is_file() {
        return Vec::new();
    }
    match crate::inspect::read_most_confused(&path) {
        Ok(mut rows) => {
            rows.truncate(5);
            rows
        }
        Err(e) => {
            tracing::warn!("{e:#}");
            Vec::new()
        }
    }
}

/// The comparison tables that have at least one run. Each run is compared with its
/// group's baseline (the first row of the table with a run in the same runs folder
/// group, e.g. `fashion-mnist`): the difference on the table's metric with its 95%
/// interval, and a verdict after Holm's correction over the table's comparisons.
pub(super) fn comparisons(tables: &[Comparison], runs: &[RunRow], boot: &Bootstrap) -> Vec<ComparisonTable> {
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
        let adjusted = stats::holm(&p_values, ALPHA).unwrap_or_else(|e| unreachable!("ALPHA is a level: {e}"));
        let tested = p_values.iter().filter(|p| !p.is_nan()).count();
        let rows = listed
            .iter()
            .zip(outcomes)
            .zip(&adjusted)
            .map(|(((entry, r), outcome), holm)| ComparedRun {
                id: r.id.clone(),
                what: entry.what.clone(),
                accuracy: (r.accuracy, r.intervals.map(|i| i.0)),
                f1_macro: (r.f1_macro, r.intervals.map(|i| i.1)),
                train_seconds: r.train_seconds,
                // The seed's number is for its own dataset only.
                seed_number: entry.seed.clone().filter(|_| r.dataset == table.dataset),
                outcome: match outcome {
                    None => Outcome::Baseline,
                    Some(Ok(o)) => {
                        Outcome::Tested { difference: o.difference, adjusted_p: holm.adjusted, test: o.test }
                    }
                    Some(Err(e)) => Outcome::NotCompared(short_reason(&e)),
                },
            })
            .collect();
        out.push(ComparisonTable {
            title: table.title.clone(),
            metric,
            rows,
            other_recipes,
            resamples: boot.resamples,
            tested,
        });
    }
    out
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
pub(super) fn draw_plots(run: &mut RunRow) -> Result<()> {
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
