//! `cnnlab metrics FILE.csv [--json]`: every metric of a predictions file.
//!
//! The CSV has a header with `y_true`, optionally `y_pred`, and optionally one score
//! column per class named `p_<class>` (then ROC AUC and log loss are reported, and a
//! missing `y_pred` is each row's argmax). Labels are class indices or class names.

use std::path::Path;

use anyhow::{Context, Result};
use cnnlab_metrics::Report;

pub use cnnlab_run::{FingerprintColumn, Predictions};

/// [`cnnlab_run::read_predictions`], for the commands.
pub fn read(path: &Path) -> Result<Predictions> {
    Ok(cnnlab_run::read_predictions(path)?)
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
