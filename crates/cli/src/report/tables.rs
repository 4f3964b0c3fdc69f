//! The report's tables and notes as text cells, the same for both renderers: the
//! numbers of [`Content`](super::collect::Content) formatted once, here.

use std::path::Path;

use cnnlab_metrics::stats::Estimate;

use super::collect::{ComparedRun, ComparisonTable, Epochs, FinetuneRow, Outcome, RunRow, TargetRow, ALPHA};
use crate::compare;

/// A table: its header and rows of cells.
pub(super) struct Table {
    pub(super) header: Vec<String>,
    pub(super) rows: Vec<Vec<String>>,
}

impl Table {
    fn new(header: &[&str], rows: Vec<Vec<String>>) -> Self {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows }
    }
}

/// The run table: what a reader compares at a glance. The rest of each run's
/// settings and scores are in its own section ([`details`]).
pub(super) fn runs(runs: &[RunRow]) -> Table {
    let header =
        ["run", "dataset", "model", "epochs", "train time", "test accuracy [95% CI]", "macro-F1 [95% CI]", "seeds"];
    let rows = runs
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.dataset.clone(),
                r.model.clone(),
                epochs(r.epochs),
                duration(r.train_seconds),
                with_interval(r.accuracy, r.intervals.map(|i| i.0)),
                with_interval(r.f1_macro, r.intervals.map(|i| i.1)),
                if r.ensemble > 0 { format!("ensemble of {}", r.ensemble) } else { r.n_seeds.to_string() },
            ]
        })
        .collect();
    Table::new(&header, rows)
}

/// A run's details, one row under its heading (augmentation last: it may be long).
pub(super) fn details(r: &RunRow) -> Table {
    let header = [
        "trainable params",
        "optimizer",
        "imbalance",
        "images/s",
        "peak RSS",
        "ROC-AUC (ovr macro)",
        "MCC",
        "augmentation",
    ];
    let row = vec![
        cnnlab_run::thousands(r.params),
        format!("{:?} {}", r.optimizer, r.lr).to_lowercase(),
        r.imbalance.clone(),
        format!("{:.0}", r.images_per_sec),
        r.metrics.peak_rss_mb.map_or_else(|| "-".to_owned(), |mb| format!("{mb:.0} MB")),
        r.roc_auc.map_or("-".into(), |v| format!("{v:.4}")),
        format!("{:.4}", r.mcc),
        if r.augment.is_empty() { "-".to_owned() } else { r.augment.join(", ") },
    ];
    Table::new(&header, vec![row])
}

/// A run's most confused class pairs.
pub(super) fn confused(r: &RunRow) -> Table {
    let rows = r
        .confused
        .iter()
        .map(|c| {
            vec![c.true_class.clone(), c.predicted.clone(), c.count.to_string(), format!("{:.1}%", c.share * 100.0)]
        })
        .collect();
    Table::new(&["true", "predicted", "count", "share of the true class"], rows)
}

/// The Targets table.
pub(super) fn targets(rows: &[TargetRow]) -> Table {
    let rows = rows
        .iter()
        .map(|t| {
            let mut goals: Vec<String> = t.goals.iter().map(|(name, goal, _)| format!("{name} >= {goal:.4}")).collect();
            if let Some(minutes) = t.minutes {
                goals.push(format!("within {minutes} min"));
            }
            let got: Vec<String> = t.goals.iter().map(|(name, _, value)| format!("{name} {value:.4}")).collect();
            vec![
                t.id.clone(),
                goals.join(", "),
                got.join(", "),
                duration(t.train_seconds),
                if t.met { "yes" } else { "NO" }.to_string(),
            ]
        })
        .collect();
    Table::new(&["run", "target", "reached", "train time", "met"], rows)
}

/// The from-scratch vs fine-tuned table.
pub(super) fn finetuned(rows: &[FinetuneRow]) -> Table {
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.group.clone(),
                r.id.clone(),
                r.start.clone().unwrap_or_else(|| "scratch (best)".to_owned()),
                format!("{:.4}", r.accuracy),
                format!("{:.4}", r.f1_macro),
                duration(r.train_seconds),
                format!("{:.0}", r.images_per_sec),
            ]
        })
        .collect();
    Table::new(&["group", "run", "start", "accuracy", "macro-F1", "train time", "images/s"], rows)
}

/// A comparison table, with the difference and verdict columns on its metric.
pub(super) fn comparison(t: &ComparisonTable) -> Table {
    let mut header =
        vec!["run", "what", "test accuracy [95% CI]", "macro-F1 [95% CI]", "train time", "the seed's number"];
    let difference = format!("{} vs baseline [95% CI]", metric_title(t.metric.name()));
    header.extend([difference.as_str(), "verdict (0.05, Holm)"]);
    Table::new(&header, t.rows.iter().map(compared_cells).collect())
}

fn compared_cells(r: &ComparedRun) -> Vec<String> {
    let (difference, verdict) = match &r.outcome {
        Outcome::Baseline => ("baseline".to_owned(), "-".to_owned()),
        Outcome::Tested { difference, adjusted_p, test } => {
            (compare::difference_text(difference), compare::verdict(*adjusted_p, ALPHA, *test, true))
        }
        Outcome::NotCompared(why) => ("-".to_owned(), format!("not compared: {why}")),
    };
    vec![
        r.id.clone(),
        r.what.clone(),
        with_interval(r.accuracy.0, r.accuracy.1),
        with_interval(r.f1_macro.0, r.f1_macro.1),
        duration(r.train_seconds),
        r.seed_number.clone().unwrap_or_else(|| "-".into()),
        difference,
        verdict,
    ]
}

/// How a comparison table's difference and verdict columns were made.
pub(super) fn method_note(t: &ComparisonTable) -> String {
    format!(
        "Intervals are 95%: a bootstrap over the test set for one run ({} resamples), Student-t over seeds for \
         replicates. The baseline is the first row of each runs group; differences are row minus baseline on \
         {}, tested with McNemar (accuracy) or the paired bootstrap for single runs on the same test \
         set and with Welch's t-test over seeds; verdicts at 0.05 after Holm's correction over this table's {} \
         comparison{}.",
        t.resamples,
        t.metric.name(),
        t.tested,
        if t.tested == 1 { "" } else { "s" }
    )
}

/// The sentence under a comparison table naming the runs left out of it.
pub(super) fn other_recipes_note(t: &ComparisonTable) -> Option<String> {
    let ids = &t.other_recipes;
    (!ids.is_empty()).then(|| {
        format!(
            "Not listed: {} (same name, trained another way than the rows describe).",
            ids.iter().map(|id| format!("`{id}`")).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Under the runs table: what the brackets are.
pub(super) const INTERVALS_NOTE: &str = "Brackets are 95% intervals: a bootstrap over the test set (1000 resamples) \
     for one run; for seed replicates (`seeds` > 1) the values are means over seeds with a Student-t interval. An \
     ensemble (`ensemble = true`) is one model, its seeds' probabilities averaged: bootstrap, and its train time \
     is its seeds' sum.";

/// Under the run table: what its speed columns can and cannot say.
pub(super) const SPEED_NOTE: &str = "Train time (and images/s in each run's details) is what each run measured where \
    it trained, under whatever else ran there: two trainings at once on 2 cores took 5x longer than one after the \
    other. Compare speed between runs trained one at a time on one idle machine, or with `cargo xtask bench` \
    (cnnlab and PyTorch alternated on the same machine).";

/// What a run's section shows beside its plots, when some are not its own or absent.
pub(super) fn plots_note(r: &RunRow, rel: &dyn Fn(&Path) -> String) -> Option<String> {
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

/// The top-loss grid's tooltip: each picture's file, true and predicted class.
pub(super) fn top_losses_title(r: &RunRow) -> String {
    if r.top_losses.is_empty() {
        return "top losses".into();
    }
    let lines: Vec<String> = r
        .top_losses
        .iter()
        .map(|t| {
            format!("{}. {}: true {}, predicted {} ({:.4})", t.rank, t.id, t.true_class, t.predicted, t.p_predicted)
        })
        .collect();
    lines.join("\n")
}

/// "1 finished run", "3 finished runs".
pub(super) fn finished_runs(n: usize) -> String {
    format!("{n} finished run{}", if n == 1 { "" } else { "s" })
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

/// The epochs cell: the epochs trained, and why they differ from the config's when
/// they do (early stopping; a run trained on with `--resume --epochs`).
fn epochs(e: Epochs) -> String {
    use std::cmp::Ordering::*;
    match e.trained.cmp(&e.configured) {
        Equal => e.trained.to_string(),
        Less if e.early_stopping => format!("{} of {} (early stop)", e.trained, e.configured),
        Less => format!("{} of {} (stopped)", e.trained, e.configured),
        Greater => format!("{} (config: {})", e.trained, e.configured),
    }
}

/// "0.8123 [0.8046, 0.8199]", or the bare value without an interval.
fn with_interval(value: f64, ci: Option<Estimate>) -> String {
    match ci {
        Some(ci) if !ci.low.is_nan() => compare::interval_text(&ci),
        _ => format!("{value:.4}"),
    }
}

/// A study's trials: number, state, epochs reached, metric, each parameter's value.
pub(super) fn study_trials(s: &super::tuning::StudyReport) -> Table {
    let mut header = vec!["trial".to_owned(), "state".into(), "epochs".into(), s.metric.clone()];
    header.extend(s.keys.iter().cloned());
    let rows = s
        .trials
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let state = match t.state {
                crate::tune::TrialState::Running => "running",
                crate::tune::TrialState::Complete => "complete",
                crate::tune::TrialState::Pruned => "pruned",
                crate::tune::TrialState::Failed => "failed",
            };
            let mut row = vec![
                k.to_string(),
                state.into(),
                t.epochs.to_string(),
                t.value.map_or("-".into(), |v| format!("{v:.4}")),
            ];
            row.extend(
                s.keys.iter().map(|key| t.params.get(key).map_or("-".into(), |v| super::tuning::param_text(v, 2))),
            );
            row
        })
        .collect();
    Table { header, rows }
}

/// Each parameter's importance.
pub(super) fn study_importance(s: &super::tuning::StudyReport) -> Table {
    let rows = s.importance.iter().map(|(k, v)| vec![k.clone(), format!("{v:.2}")]).collect();
    Table { header: vec!["parameter".into(), "importance (eta squared)".into()], rows }
}

/// One line about a study: trials by state, CPU-minutes, the best.
pub(super) fn study_summary(s: &super::tuning::StudyReport) -> String {
    use crate::tune::TrialState::*;
    let count = |st| s.trials.iter().filter(|t| t.state == st).count();
    let best =
        s.best.map_or("no trial completed".into(), |(k, v)| format!("the best is trial {k} with {} {v:.4}", s.metric));
    format!(
        "{} trials ({} complete, {} pruned, {} failed, {} running), {:.1} CPU-minutes of training; {best}.",
        s.trials.len(),
        count(Complete),
        count(Pruned),
        count(Failed),
        count(Running),
        s.minutes
    )
}

/// How importance is computed, for under its table.
pub(super) const IMPORTANCE_NOTE: &str = "Importance: the share of the metric's variance over the complete trials that each parameter's values explain on their own (eta squared over its choices, or over up to 4 equal-count bins of a number); interactions are not counted.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_that_differ_from_the_config_say_why() {
        let e = |trained, configured, early_stopping| epochs(Epochs { trained, configured, early_stopping });
        assert_eq!(e(5, 5, false), "5");
        assert_eq!(e(3, 5, true), "3 of 5 (early stop)");
        assert_eq!(e(3, 5, false), "3 of 5 (stopped)");
        assert_eq!(e(3, 2, false), "3 (config: 2)");
    }

    #[test]
    fn run_counts_read_as_english() {
        assert_eq!(finished_runs(1), "1 finished run");
        assert_eq!(finished_runs(2), "2 finished runs");
    }
}
