//! Comparing runs with their uncertainty: `cnnlab compare A B` and the report's
//! intervals, differences and verdicts.
//!
//! A run is one folder with a `predictions.csv` (one seed), or a folder of seed
//! replicates `seed-<k>/` (what `[train] seeds` and `train-all --seeds` write). One
//! run's metric gets a bootstrap interval over its test examples; replicates get the
//! Student-t interval of their mean over seeds. Two single runs are compared on the same
//! test examples (McNemar's exact test for accuracy, the paired bootstrap for any other
//! metric; the difference's interval is always the paired bootstrap's); two sets of
//! replicates by Welch's t-test over their per-seed values.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cnnlab_metrics::stats::{self, Bootstrap, Estimate, McNemar, Metric, Replicates};

use crate::metrics_cmd::{self, Predictions};

/// The folder name of seed `k`'s run inside a replicate set.
pub fn seed_dir_name(k: u64) -> String {
    format!("seed-{k}")
}

/// The seed of a folder named `seed-<k>`.
pub fn seed_of(dir: &Path) -> Option<u64> {
    dir.file_name()?.to_str()?.strip_prefix("seed-")?.parse().ok()
}

/// `dir`'s `seed-<k>/` folders, by seed.
pub fn seed_dirs(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(u64, PathBuf)> =
        entries.filter_map(|e| e.ok()).map(|e| e.path()).filter_map(|p| Some((seed_of(&p)?, p))).collect();
    out.sort();
    out
}

/// What one side of a comparison has to offer.
#[derive(Debug)]
pub enum Evidence {
    /// One run's predictions file.
    Single { file: PathBuf, predictions: Predictions },
    /// Seed replicates: each seed's predictions file.
    Replicates { dir: PathBuf, seeds: Vec<(u64, PathBuf, Predictions)> },
}

use cnnlab_run::files::PREDICTIONS;

impl Evidence {
    /// A predictions CSV, a run folder, or a folder of `seed-<k>/` runs.
    pub fn load(path: &Path) -> Result<Evidence> {
        if path.is_file() {
            return Ok(Evidence::Single { file: path.to_path_buf(), predictions: metrics_cmd::read(path)? });
        }
        let file = path.join(PREDICTIONS);
        if file.is_file() {
            return Ok(Evidence::Single { predictions: metrics_cmd::read(&file)?, file });
        }
        if !path.is_dir() {
            bail!("{} does not exist", path.display());
        }
        let mut seeds = Vec::new();
        for (k, dir) in seed_dirs(path) {
            let file = dir.join(PREDICTIONS);
            if file.is_file() {
                seeds.push((k, file.clone(), metrics_cmd::read(&file)?));
            }
        }
        if seeds.is_empty() {
            bail!("{}: no {PREDICTIONS} and no finished seed-<k>/ run in it (is the run finished?)", path.display());
        }
        Ok(Evidence::Replicates { dir: path.to_path_buf(), seeds })
    }

    /// The file or folder this came from.
    pub fn path(&self) -> &Path {
        match self {
            Evidence::Single { file, .. } => file,
            Evidence::Replicates { dir, .. } => dir,
        }
    }

    /// The metric with its 95% interval (bootstrap over examples, or t over seeds).
    pub fn estimate(&self, metric: Metric, boot: &Bootstrap) -> Result<Estimate> {
        match self {
            Evidence::Single { file, predictions } => {
                let p = as_stats(predictions, metric, file)?;
                boot.interval(metric, &p).with_context(|| format!("bootstrap of {}", file.display()))
            }
            Evidence::Replicates { dir, .. } => Ok(Replicates::new(&self.per_seed(metric)?, boot.confidence)
                .with_context(|| format!("seeds of {}", dir.display()))?
                .interval),
        }
    }

    /// How [`Evidence::estimate`] computes its interval, in words.
    pub fn how(&self, metric: Metric, boot: &Bootstrap) -> Result<String> {
        Ok(match self {
            Evidence::Single { predictions, .. } => {
                format!("bootstrap over {} test examples, {} resamples", predictions.y_true.len(), boot.resamples)
            }
            Evidence::Replicates { seeds, .. } if seeds.len() > 1 => {
                let values = self.per_seed(metric)?;
                let std = Replicates::new(&values, boot.confidence)?.std;
                format!("t-interval over {} seeds, std {std:.4}", values.len())
            }
            Evidence::Replicates { .. } => "one seed: no interval".to_owned(),
        })
    }

    /// The metric of each seed (one value for a single run).
    pub fn per_seed(&self, metric: Metric) -> Result<Vec<f64>> {
        match self {
            Evidence::Single { file, predictions } => Ok(vec![as_stats(predictions, metric, file)?.metric(metric)]),
            Evidence::Replicates { seeds, .. } => {
                seeds.iter().map(|(_, file, p)| Ok(as_stats(p, metric, file)?.metric(metric))).collect()
            }
        }
    }
}

/// The statistics crate's view of a predictions file.
fn as_stats<'a>(p: &'a Predictions, metric: Metric, file: &Path) -> Result<stats::Predictions<'a>> {
    let mut out = stats::Predictions::new(&p.y_true, &p.y_pred, p.classes.len())
        .with_context(|| format!("reading {}", file.display()))?;
    match (&p.scores, metric) {
        (Some(s), _) => out = out.with_scores(s).with_context(|| format!("scores of {}", file.display()))?,
        (None, Metric::RocAuc) => bail!("{}: ROC AUC needs the p_<class> columns", file.display()),
        (None, _) => {}
    }
    Ok(out)
}

/// The test behind a comparison's p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    /// McNemar's exact test (accuracy of two runs on the same examples).
    McNemar,
    /// The paired bootstrap (any other metric of two runs on the same examples).
    PairedBootstrap,
    /// Welch's t-test over seed replicates.
    Welch,
}

impl Test {
    pub fn name(self) -> &'static str {
        match self {
            Test::McNemar => "McNemar",
            Test::PairedBootstrap => "paired bootstrap",
            Test::Welch => "Welch over seeds",
        }
    }
}

/// B against A on one metric.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub metric: Metric,
    pub a: Estimate,
    pub b: Estimate,
    /// `b - a` with its 95% interval.
    pub difference: Estimate,
    pub p_value: f64,
    pub test: Test,
}

/// Compares B with A on `metric`: each side's estimate with its interval, and the
/// difference with its test (see [`difference`]).
pub fn compare(a: &Evidence, b: &Evidence, metric: Metric, boot: &Bootstrap) -> Result<Outcome> {
    let d = difference(a, b, metric, boot)?;
    Ok(Outcome {
        metric,
        a: a.estimate(metric, boot)?,
        b: b.estimate(metric, boot)?,
        difference: d.difference,
        p_value: d.p_value,
        test: d.test,
    })
}

/// B minus A on one metric, with its 95% interval and p-value.
#[derive(Debug, Clone)]
pub struct Difference {
    pub difference: Estimate,
    pub p_value: f64,
    pub test: Test,
}

/// B minus A on `metric`: two single runs on the same test examples (McNemar for
/// accuracy, else the paired bootstrap; the interval is always the paired bootstrap's),
/// or two sets of seed replicates (Welch).
pub fn difference(a: &Evidence, b: &Evidence, metric: Metric, boot: &Bootstrap) -> Result<Difference> {
    match (a, b) {
        (Evidence::Single { file: fa, predictions: pa }, Evidence::Single { file: fb, predictions: pb }) => {
            same_test_set(fa, pa, fb, pb)?;
            let (sa, sb) = (as_stats(pa, metric, fa)?, as_stats(pb, metric, fb)?);
            let paired = boot.paired(metric, &sa, &sb)?;
            let (p_value, test) = if metric == Metric::Accuracy {
                (McNemar::from_predictions(&pa.y_true, &pa.y_pred, &pb.y_pred)?.p_exact, Test::McNemar)
            } else {
                (paired.p_value, Test::PairedBootstrap)
            };
            Ok(Difference { difference: paired.difference, p_value, test })
        }
        (Evidence::Replicates { .. }, Evidence::Replicates { .. }) => {
            let (va, vb) = (a.per_seed(metric)?, b.per_seed(metric)?);
            let w = stats::welch(&va, &vb).with_context(|| {
                format!(
                    "Welch's test needs two seeds a side ({} has {}, {} has {})",
                    a.path().display(),
                    va.len(),
                    b.path().display(),
                    vb.len()
                )
            })?;
            Ok(Difference { difference: w.interval(boot.confidence), p_value: w.p_value, test: Test::Welch })
        }
        _ => bail!(
            "{} and {} are not alike: compare two single runs (same test set) or two folders of seed replicates",
            a.path().display(),
            b.path().display()
        ),
    }
}

/// Two predictions files hold the same test examples in the same order with the same
/// true classes; otherwise one line naming the first differing example. Examples are
/// matched by their content fingerprints when both files have them (the same images
/// at another path are the same test set; two generated sets that differ are not,
/// though their indices agree), else by their `file` or `index` column.
pub fn same_test_set(fa: &Path, a: &Predictions, fb: &Path, b: &Predictions) -> Result<()> {
    let (da, db) = (fa.display(), fb.display());
    if a.classes != b.classes {
        bail!(
            "{da} and {db} have different classes ({} vs {}): not the same test set",
            a.classes.join(","),
            b.classes.join(",")
        );
    }
    let by_content = match (&a.fingerprints, &b.fingerprints) {
        (Some(x), Some(y)) if x.column == y.column => Some((x, y)),
        _ => None,
    };
    let first = match by_content {
        Some((x, y)) => x.values.iter().zip(&y.values).position(|(p, q)| p != q),
        None => a.ids.iter().zip(&b.ids).position(|(x, y)| x != y),
    };
    if let Some(i) = first {
        match by_content {
            Some((x, _)) => bail!(
                "{da} and {db} are not the same test set: example {} (`{}` in the first, `{}` in the second) has \
                 other content ({} differs)",
                i + 1,
                a.ids[i],
                b.ids[i],
                x.column
            ),
            None => bail!(
                "{da} and {db} are not the same test set: example {} is `{}` in the first and `{}` in the second",
                i + 1,
                a.ids[i],
                b.ids[i]
            ),
        }
    }
    if a.ids.len() != b.ids.len() {
        let (longer, name, extra) = if a.ids.len() > b.ids.len() {
            (&da, "first", &a.ids[b.ids.len()])
        } else {
            (&db, "second", &b.ids[a.ids.len()])
        };
        bail!(
            "{da} has {} examples and {db} {}: not the same test set (`{extra}` is only in the {name}, {longer})",
            a.ids.len(),
            b.ids.len()
        );
    }
    if let Some(i) = a.y_true.iter().zip(&b.y_true).position(|(x, y)| x != y) {
        bail!("{da} and {db} disagree on the true class of `{}` (example {}): not the same test set", a.ids[i], i + 1);
    }
    Ok(())
}

/// "significant (McNemar, p = 0.003)" or "not significant (...)", at `alpha`.
pub fn verdict(p: f64, alpha: f64, test: Test, adjusted: bool) -> String {
    if p.is_nan() {
        return format!("untested ({})", test.name());
    }
    let what = if p <= alpha { "significant" } else { "not significant" };
    let p_name = if adjusted { "Holm-adjusted p" } else { "p" };
    format!("{what} ({}, {p_name} {})", test.name(), p_text(p))
}

/// A p-value for people with its relation: `= 0.0123` (4 decimals), `< 0.0001` below that.
pub fn p_text(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".to_owned()
    } else {
        format!("= {p:.4}")
    }
}

/// "0.8123 [0.8046, 0.8199]".
pub fn interval_text(e: &Estimate) -> String {
    if e.low.is_nan() {
        format!("{:.4}", e.value)
    } else {
        format!("{:.4} [{:.4}, {:.4}]", e.value, e.low, e.high)
    }
}

/// "+0.0128 [+0.0050, +0.0204]".
pub fn difference_text(e: &Estimate) -> String {
    format!("{:+.4} [{:+.4}, {:+.4}]", e.value, e.low, e.high)
}

/// `cnnlab compare A B [--metric M] [--json]`.
pub fn run(a: &Path, b: &Path, metric: &str, boot: &Bootstrap, json: bool) -> Result<()> {
    let Some(metric) = Metric::from_name(metric) else {
        bail!(
            "unknown --metric `{metric}` (one of: {})",
            Metric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
        );
    };
    let (ea, eb) = (Evidence::load(a)?, Evidence::load(b)?);
    let outcome = compare(&ea, &eb, metric, boot)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
        return Ok(());
    }
    let (how_a, how_b) = (ea.how(metric, boot)?, eb.how(metric, boot)?);
    println!("{metric} with {:.0}% intervals", boot.confidence * 100.0);
    println!("A  {}  {}  ({how_a})", a.display(), interval_text(&outcome.a));
    println!("B  {}  {}  ({how_b})", b.display(), interval_text(&outcome.b));
    println!("B - A  {}", difference_text(&outcome.difference));
    println!(
        "p {} ({}): {}",
        p_text(outcome.p_value),
        outcome.test.name(),
        if outcome.p_value <= 0.05 { "significant at 0.05" } else { "not significant at 0.05" }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, rows: &[(&str, &str, &str)]) -> PathBuf {
        let mut text = String::from("file,y_true,y_pred\n");
        for (f, t, p) in rows {
            text.push_str(&format!("{f},{t},{p}\n"));
        }
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn different_test_sets_name_the_first_differing_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a/predictions.csv", &[("x.jpg", "cat", "cat"), ("y.jpg", "dog", "cat")]);
        let b = write(dir.path(), "b/predictions.csv", &[("x.jpg", "cat", "dog"), ("z.jpg", "dog", "dog")]);
        let c = write(dir.path(), "c/predictions.csv", &[("x.jpg", "cat", "dog")]);
        let boot = Bootstrap::default();
        let load = |p: &Path| Evidence::load(p.parent().unwrap()).unwrap();
        let err = compare(&load(&a), &load(&b), Metric::Accuracy, &boot).unwrap_err().to_string();
        assert!(err.contains("example 2 is `y.jpg` in the first and `z.jpg` in the second"), "{err}");
        assert_eq!(err.lines().count(), 1);
        let err = compare(&load(&a), &load(&c), Metric::Accuracy, &boot).unwrap_err().to_string();
        assert!(err.contains("`y.jpg` is only in the first"), "{err}");
    }

    /// With fingerprints, content decides: the same images at other paths are one test
    /// set, and two generated sets with equal indices but other pixels are not.
    #[test]
    fn fingerprints_decide_over_paths_and_indices() {
        let dir = tempfile::tempdir().unwrap();
        let csv = |name: &str, id: &str, rows: &[(&str, &str)]| {
            let mut text = format!("{id},y_true,y_pred,p_cat,p_dog,file_sha256\n");
            for (file, hash) in rows {
                text.push_str(&format!("{file},cat,cat,0.9,0.1,{hash}\n"));
            }
            let path = dir.path().join(name);
            std::fs::write(
                &path,
                text.replace("file_sha256", if id == "index" { "pixels_sha256" } else { "file_sha256" }),
            )
            .unwrap();
            Evidence::load(&path).unwrap()
        };
        let boot = Bootstrap { resamples: 99, ..Default::default() };
        let here = csv("here.csv", "file", &[("/data/x.jpg", "aa"), ("/data/y.jpg", "bb")]);
        let moved = csv("moved.csv", "file", &[("/mnt/copy/x.jpg", "aa"), ("/mnt/copy/y.jpg", "bb")]);
        assert!(compare(&here, &moved, Metric::Accuracy, &boot).is_ok());
        let seed0 = csv("s0.csv", "index", &[("0", "aa"), ("1", "bb")]);
        let seed9 = csv("s9.csv", "index", &[("0", "aa"), ("1", "cc")]);
        let err = compare(&seed0, &seed9, Metric::Accuracy, &boot).unwrap_err().to_string();
        assert!(err.contains("not the same test set: example 2 (`1` in the first, `1` in the second) has other content (pixels_sha256 differs)"), "{err}");
    }

    /// The reader (cnnlab-run) knows the columns the writer's fingerprints (cnnlab-data) use.
    #[test]
    fn the_reader_knows_the_fingerprint_columns() {
        assert_eq!(cnnlab_run::FINGERPRINT_COLUMNS, [cnnlab_data::FILE_SHA256, cnnlab_data::PIXELS_SHA256]);
    }

    #[test]
    fn replicates_are_found_by_seed_and_compared_with_welch() {
        let dir = tempfile::tempdir().unwrap();
        let rows_a: [&[(&str, &str, &str)]; 3] = [
            &[("1", "a", "a"), ("2", "b", "a"), ("3", "b", "b"), ("4", "a", "a")],
            &[("1", "a", "a"), ("2", "b", "b"), ("3", "b", "a"), ("4", "a", "b")],
            &[("1", "a", "a"), ("2", "b", "b"), ("3", "b", "b"), ("4", "a", "b")],
        ];
        for (k, rows) in rows_a.iter().enumerate() {
            write(dir.path(), &format!("a/seed-{k}/predictions.csv"), rows);
            write(
                dir.path(),
                &format!("b/seed-{k}/predictions.csv"),
                &[("1", "a", "a"), ("2", "b", "b"), ("3", "b", "b"), ("4", "a", rows[0].2)],
            );
        }
        let (a, b) = (Evidence::load(&dir.path().join("a")).unwrap(), Evidence::load(&dir.path().join("b")).unwrap());
        assert_eq!(a.per_seed(Metric::Accuracy).unwrap(), vec![0.75, 0.5, 0.75]);
        let o = compare(&a, &b, Metric::Accuracy, &Bootstrap::default()).unwrap();
        assert_eq!(o.test, Test::Welch);
        let w = stats::welch(&[0.75, 0.5, 0.75], &[1.0, 1.0, 1.0]).unwrap();
        assert_eq!((o.difference.value, o.p_value), (w.difference, w.p_value));
        assert!((o.a.value - 2.0 / 3.0).abs() < 1e-12 && o.a.low < o.a.value);
        let single = Evidence::load(&dir.path().join("a/seed-0")).unwrap();
        assert!(compare(&single, &b, Metric::Accuracy, &Bootstrap::default())
            .unwrap_err()
            .to_string()
            .contains("not alike"));
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(Evidence::load(&empty)
            .unwrap_err()
            .to_string()
            .contains("no predictions.csv and no finished seed-<k>/"));
    }

    #[test]
    fn single_runs_use_mcnemar_for_accuracy_and_the_bootstrap_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let truth = ["a", "b", "a", "b", "a", "b", "a", "b", "a", "b"];
        let ids: Vec<String> = (0..truth.len()).map(|i| i.to_string()).collect();
        // The predictions of a run wrong exactly on the examples `wrong`.
        let run = |name: &str, wrong: &[usize]| {
            let rows: Vec<(&str, &str, &str)> = truth
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    (
                        ids[i].as_str(),
                        t,
                        if !wrong.contains(&i) {
                            t
                        } else if t == "a" {
                            "b"
                        } else {
                            "a"
                        },
                    )
                })
                .collect();
            write(dir.path(), name, &rows)
        };
        let (a, b) = (run("a/predictions.csv", &[0, 1, 2, 3]), run("b/predictions.csv", &[3]));
        let (ea, eb) = (Evidence::load(&a).unwrap(), Evidence::load(&b).unwrap());
        let boot = Bootstrap::default();
        let acc = compare(&ea, &eb, Metric::Accuracy, &boot).unwrap();
        assert_eq!(acc.test, Test::McNemar);
        // A is wrong on 0..4, B only on 3: three discordant pairs, all for B.
        assert!((acc.p_value - McNemar::new(0, 3).p_exact).abs() < 1e-15);
        assert!((acc.difference.value - 0.3).abs() < 1e-12);
        let f1 = compare(&ea, &eb, Metric::F1Macro, &boot).unwrap();
        assert_eq!(f1.test, Test::PairedBootstrap);
        assert!(f1.difference.low <= f1.difference.value && f1.difference.value <= f1.difference.high);
        assert_eq!(verdict(0.01, 0.05, Test::McNemar, true), "significant (McNemar, Holm-adjusted p = 0.0100)");
        assert_eq!(verdict(0.2, 0.05, Test::Welch, false), "not significant (Welch over seeds, p = 0.2000)");
        assert_eq!(verdict(3e-7, 0.05, Test::McNemar, true), "significant (McNemar, Holm-adjusted p < 0.0001)");
    }
}
