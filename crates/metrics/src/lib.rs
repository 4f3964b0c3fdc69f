//! cnnlab-metrics: classification metrics over plain slices, identical to
//! scikit-learn's (golden tests compare to 1e-9).
//!
//! Labels are `usize` class indices below `n_classes`; scores are row-major
//! `n_samples x n_classes` slices of `f32` or `f64`. Bad input is a typed [`Error`]
//! (length mismatch, label out of range, NaN score, empty input, zero classes),
//! never a panic.
//!
//! ROC AUC comes in two flavours: [`roc_auc_ovr`] is strict like scikit-learn (a class
//! with no positive or no negative sample is an error naming the class), while
//! [`roc_auc_ovr_per_class`] gives `None` for such a class and
//! [`roc_auc_ovr_lenient`] averages over the defined ones; [`Report`] uses the lenient
//! form so one rare class does not hide every other number.
//!
//! ```
//! use cnnlab_metrics::{Average, ConfusionMatrix, ZeroDivision};
//! let cm = ConfusionMatrix::from_labels(&[0, 1, 1, 2], &[0, 1, 2, 2], 3).unwrap();
//! assert_eq!(cm.accuracy(), 0.75);
//! let f1 = cm.averaged(Average::Macro, 1.0, ZeroDivision::Zero).f_beta;
//! assert!((f1 - 7.0 / 9.0).abs() < 1e-12);
//! ```
//!
//! This crate depends on neither `tch` nor the image stack, so it can be used alone
//! (ARCHITECTURE.md).

#![deny(missing_docs)]

mod confusion;
mod error;
mod functional;
mod report;
mod scores;

pub use confusion::{Average, ConfusionMatrix, KappaWeights, PerClass, Prf, ZeroDivision};
pub use error::{Error, Result};
pub use functional::{
    cohen_kappa_score, encode_labels, f1_score, precision_recall_fscore, precision_score, recall_score, Encoded,
    Labels, Options, Scores,
};
pub use report::{Accumulator, ClassRow, DictEntry, Report, ReportDict};
pub use scores::{
    argmax_rows, average_precision, average_precision_ovr, brier_score, log_loss, precision_recall_curve, roc_auc,
    roc_auc_ovr, roc_auc_ovr_lenient, roc_auc_ovr_per_class, roc_curve, top_k_accuracy, Averages, PrCurve, RocCurve,
};
