//! `cnnlab metrics FILE.csv [--json]`: every metric of a predictions file.
//!
//! The CSV has a header with `y_true`, optionally `y_pred`, and optionally one score
//! column per class named `p_<class>` (then ROC AUC and log loss are reported, and a
//! missing `y_pred` is each row's argmax). Labels are class indices or class names.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use cnnlab_data::Fingerprints;
use cnnlab_metrics::{argmax_rows, Report};

/// Parsed predictions: labels as indices into `classes`, scores row-major.
#[derive(Debug)]
pub struct Predictions {
    /// Each row's example: the `file` or `index` column, else the row's line number.
    pub ids: Vec<String>,
    pub classes: Vec<String>,
    pub y_true: Vec<usize>,
    pub y_pred: Vec<usize>,
    pub scores: Option<Vec<f64>>,
    /// Each example's content fingerprint (a `file_sha256` or `pixels_sha256` column,
    /// which cnnlab writes since 2026-12): what `compare` matches test sets on.
    pub fingerprints: Option<Fingerprints>,
}

pub fn read(path: &Path) -> Result<Predictions> {
    let shown = path.display();
    let mut reader = csv::Reader::from_path(path).with_context(|| format!("reading {shown}"))?;
    let header = reader.headers().with_context(|| format!("{shown}: reading the header"))?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        bail!("{shown}: the file is empty (expected a header with y_true and y_pred or p_<class> columns)");
    }
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let t_col = column("y_true").ok_or_else(|| anyhow!("{shown}: missing column `y_true`"))?;
    let mut names = BTreeSet::new();
    if let Some(dup) = header.iter().map(str::trim).find(|h| !names.insert(*h)) {
        bail!("{shown}: column `{dup}` appears twice in the header");
    }
    let p_col = column("y_pred");
    let id_col = column("file").or_else(|| column("index"));
    let fingerprint_col = header.iter().enumerate().find_map(|(i, h)| Some((i, Fingerprints::column_named(h.trim())?)));
    let score_cols: Vec<(usize, String)> =
        header.iter().enumerate().filter_map(|(i, h)| h.trim().strip_prefix("p_").map(|c| (i, c.to_owned()))).collect();
    if p_col.is_none() && score_cols.is_empty() {
        bail!("{shown}: needs a `y_pred` column or one `p_<class>` score column per class");
    }

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{shown}: malformed CSV"))?;
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record));
    }
    if rows.is_empty() {
        bail!("{shown}: no rows after the header");
    }

    // Class names: from score columns when present, else from the labels themselves.
    let classes: Vec<String> = if !score_cols.is_empty() {
        score_cols.iter().map(|(_, c)| c.clone()).collect()
    } else {
        let mut seen = BTreeSet::new();
        for (_, r) in &rows {
            seen.insert(r[t_col].trim().to_owned());
            if let Some(p) = p_col {
                seen.insert(r[p].trim().to_owned());
            }
        }
        let numbers: Option<Vec<usize>> = seen.iter().map(|s| s.parse().ok()).collect();
        match numbers {
            Some(n) => (0..=n.into_iter().max().unwrap_or(0)).map(|i| i.to_string()).collect(),
            None => seen.into_iter().collect(),
        }
    };
    let label = |value: &str, col: &str, line: u64| -> Result<usize> {
        let value = value.trim();
        if let Some(i) = classes.iter().position(|c| c == value) {
            return Ok(i);
        }
        match value.parse::<usize>() {
            Ok(i) if i < classes.len() => Ok(i),
            _ => Err(anyhow!("{shown}:{line}: unknown class `{value}` in {col} (classes: {})", classes.join(", "))),
        }
    };

    let k = classes.len();
    let (mut y_true, mut y_pred) = (Vec::new(), Vec::new());
    let mut scores = (!score_cols.is_empty()).then(Vec::new);
    let mut ids = Vec::with_capacity(rows.len());
    let mut fingerprints = fingerprint_col.map(|(_, column)| Fingerprints { column, values: Vec::new() });
    for (line, r) in &rows {
        if let (Some((c, _)), Some(f)) = (fingerprint_col, fingerprints.as_mut()) {
            f.values.push(r.get(c).unwrap_or("").trim().to_owned());
        }
        ids.push(match id_col {
            Some(c) => r.get(c).unwrap_or("").trim().to_owned(),
            None => format!("line {line}"),
        });
        y_true.push(label(&r[t_col], "y_true", *line)?);
        if let Some(p) = p_col {
            y_pred.push(label(&r[p], "y_pred", *line)?);
        }
        if let Some(s) = scores.as_mut() {
            let mut sum = 0.0;
            for (i, name) in &score_cols {
                let raw = r.get(*i).unwrap_or("").trim();
                let v: f64 = raw.parse().map_err(|_| anyhow!("{shown}:{line}: p_{name}: `{raw}` is not a number"))?;
                if !(0.0..=1.0).contains(&v) {
                    bail!("{shown}:{line}: p_{name}: `{raw}` is not a probability in [0, 1]");
                }
                sum += v;
                s.push(v);
            }
            // Written with 6 decimals, a row of k probabilities sums to 1 within k * 5e-7.
            if (sum - 1.0).abs() > 1e-3_f64.max(k as f64 * 1e-6) {
                bail!("{shown}:{line}: the p_<class> values sum to {sum:.4}, not 1 (scores, not probabilities? apply softmax first)");
            }
        }
    }
    if p_col.is_none() {
        y_pred = argmax_rows(scores.as_deref().expect("score columns exist"), k);
    }
    Ok(Predictions { ids, classes, y_true, y_pred, scores, fingerprints })
}

pub fn run(path: &Path, json: bool) -> Result<()> {
    let p = read(path)?;
    let report = Report::new(&p.y_true, &p.y_pred, p.scores.as_deref(), &p.classes)
        .with_context(|| format!("computing metrics of {}", path.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", report.text());
    println!();
    print_scores(&report);
    Ok(())
}

/// The one-number scores under a classification report (`cnnlab metrics`, `cnnlab evaluate`).
pub fn print_scores(report: &Report) {
    let opt = |v: Option<f64>| v.map_or("n/a (no p_<class> columns)".to_owned(), |v| format!("{v:.4}"));
    let auc = match (report.roc_auc_ovr_macro, report.log_loss) {
        // Scores were given: AUC needs positives and negatives of some class.
        (None, Some(_)) => "n/a (y_true holds a single class: no class has both positives and negatives)".to_owned(),
        (auc, _) => opt(auc),
    };
    println!("micro-F1            {:.4}", report.f1_micro);
    println!("macro-F1            {:.4}", report.f1_macro);
    println!("balanced accuracy   {:.4}", report.balanced_accuracy);
    println!("MCC                 {:.4}", report.mcc);
    println!("ROC AUC (ovr macro) {auc}");
    println!("log loss            {}", opt(report.log_loss));
}

/// Fuzzing the predictions-CSV reader: CSV-like text and mutated valid files give
/// predictions or an error, never a panic; what reads back is consistent.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str =
        "file,y_true,y_pred,p_cat,p_dog\na.png,cat,cat,0.900000,0.100000\nb.png,dog,cat,0.600000,0.400000\n";

    fn check(text: &[u8]) -> std::result::Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        std::fs::write(&path, text).unwrap();
        if let Ok(p) = read(&path) {
            let k = p.classes.len();
            prop_assert_eq!(p.y_true.len(), p.y_pred.len());
            prop_assert!(p.y_true.iter().chain(&p.y_pred).all(|&c| c < k));
            if let Some(s) = &p.scores {
                prop_assert_eq!(s.len(), p.y_true.len() * k);
            }
            // And the metrics of what was read compute without a panic.
            let _ = Report::new(&p.y_true, &p.y_pred, p.scores.as_deref(), &p.classes);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(crate::args::fuzz_cases(128)))]

        #[test]
        fn csv_like_text_never_panics(text in "(y_true|y_pred|p_[a-c]|[abc0-9.,\\-\"\n ]|1e400|NaN){0,40}") {
            check(text.as_bytes())?;
        }

        #[test]
        fn mutated_valid_files_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6)) {
            let mut bytes = VALID.as_bytes().to_vec();
            for (at, byte) in edits {
                let n = bytes.len();
                bytes[at % n] = byte;
            }
            check(&bytes)?;
        }
    }
}
