//! Classification metrics that give scikit-learn's numbers (golden tests compare to
//! 1e-9 with scikit-learn 1.9.1), over plain slices.
//!
//! Labels are `usize` class indices below `n_classes` (number other labels with
//! [`encode_labels`]); scores are row-major `n_samples x n_classes` slices of `f32` or
//! `f64`. Bad input is a typed [`Error`] (length mismatch, label out of range, NaN
//! score, values that are not probabilities where probabilities are needed, empty
//! input), never a panic.
//!
//! - Label metrics: [`ConfusionMatrix`] (accuracy, balanced accuracy, per-class and
//!   averaged precision/recall/F-beta, MCC, Cohen's kappa) and scikit-learn's
//!   function-style [`precision_recall_fscore`], [`f1_score`] with `labels`,
//!   `sample_weight` and `zero_division` ([`Options`]).
//! - Score metrics: [`roc_curve`], [`roc_auc`], [`roc_auc_ovr`],
//!   [`precision_recall_curve`], [`average_precision`], [`top_k_accuracy`],
//!   [`log_loss`], [`brier_score`].
//! - `sample_weight`: [`Options::sample_weight`] for the label metrics, and
//!   [`accuracy_score_weighted`], [`top_k_accuracy_weighted`], [`log_loss_weighted`],
//!   [`brier_score_weighted`], [`roc_auc_weighted`], [`average_precision_weighted`].
//! - Uncertainty and significance ([`stats`]): bootstrap (percentile, BCa) and Wilson
//!   intervals, McNemar's test, the paired bootstrap, seed replicates with Student-t
//!   intervals and Welch's test, Holm's correction; equal to scipy / statsmodels.
//! - Everything at once: [`Report`] (and its `classification_report` text and
//!   `output_dict` layout), fed in batches by an [`Accumulator`].
//!
//! ROC AUC comes in two flavours: [`roc_auc_ovr`] is like scikit-learn (NaN for a
//! class with no positive or no negative sample, and so a NaN macro average), while
//! [`roc_auc_ovr_lenient`] averages over the defined classes; [`Report`] uses the
//! lenient form so one rare class does not hide every other number.
//!
//! ```
//! use cnnlab_metrics::{Average, ConfusionMatrix, ZeroDivision};
//! let cm = ConfusionMatrix::from_labels(&[0, 1, 1, 2], &[0, 1, 2, 2], 3).unwrap();
//! assert_eq!(cm.accuracy(), 0.75);
//! let f1 = cm.averaged(Average::Macro, 1.0, ZeroDivision::Zero).f_beta;
//! assert!((f1 - 7.0 / 9.0).abs() < 1e-12);
//! ```
//!
//! Features: `serde` (default) derives `Serialize`/`Deserialize` for the reports.
//! This crate depends on neither a tensor library nor an image stack.

#![deny(missing_docs)]

mod confusion;
mod error;
mod functional;
mod report;
mod scores;
mod special;
pub mod stats;
mod weighted;

pub use confusion::{Average, ConfusionMatrix, KappaWeights, PerClass, Prf, ZeroDivision};
pub use error::{Error, Result};
pub use functional::{
    accuracy_score, cohen_kappa_score, encode_labels, f1_score, precision_recall_fscore, precision_score, recall_score,
    Encoded, Labels, Options, Scores,
};
pub use report::{Accumulator, ClassRow, DictEntry, Report, ReportDict};
/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use scores::{
    argmax_rows, average_precision, average_precision_ovr, brier_score, log_loss, precision_recall_curve, roc_auc,
    roc_auc_ovr, roc_auc_ovr_lenient, roc_auc_ovr_per_class, roc_curve, top_k_accuracy, Averages, PrCurve, Probability,
    RocCurve,
};
pub use weighted::{
    accuracy_score_weighted, average_precision_weighted, brier_score_weighted, log_loss_weighted, roc_auc_weighted,
    top_k_accuracy_weighted,
};
