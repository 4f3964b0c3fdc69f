//! The score and label metrics with scikit-learn's `sample_weight`: each sample
//! counts by its weight, averages are `np.average(..., weights=sample_weight)`.
//! Weights are finite (negative ones count negatively, as scikit-learn lets them),
//! one per sample, not all zero; an average whose weights sum to zero is
//! [`Error::ZeroWeights`].

use crate::error::{Error, Result};
use crate::functional::check_weights;
use crate::scores::{
    average_precision_of, brier_terms, check_scores, log_losses, pr_curve_of, roc_auc_of, roc_curve_of, top_k_hits,
    weighted_clf_curve, Probability,
};

/// `np.average(values, weights)`, the weights checked first.
fn average(values: impl Iterator<Item = f64>, weights: &[f64]) -> Result<f64> {
    check_weights(Some(weights), weights.len())?;
    let total: f64 = weights.iter().sum();
    if total == 0.0 {
        return Err(Error::ZeroWeights);
    }
    Ok(values.zip(weights).map(|(v, w)| v * w).sum::<f64>() / total)
}

/// The weights' count against the samples'.
fn same_length(n: usize, weights: &[f64]) -> Result<()> {
    if n != weights.len() {
        return Err(Error::LengthMismatch { y_true: n, other: weights.len() });
    }
    Ok(())
}

/// `accuracy_score(y_true, y_pred, sample_weight=w)`.
///
/// ```
/// let a = cnnlab_metrics::accuracy_score_weighted(&[0, 1, 1], &[0, 1, 0], &[1.0, 1.0, 2.0]).unwrap();
/// assert_eq!(a, 0.5);
/// ```
pub fn accuracy_score_weighted(y_true: &[usize], y_pred: &[usize], sample_weight: &[f64]) -> Result<f64> {
    if y_true.len() != y_pred.len() {
        return Err(Error::LengthMismatch { y_true: y_true.len(), other: y_pred.len() });
    }
    if y_true.is_empty() {
        return Err(Error::Empty);
    }
    same_length(y_true.len(), sample_weight)?;
    average(y_true.iter().zip(y_pred).map(|(t, p)| f64::from(u8::from(t == p))), sample_weight)
}

/// `top_k_accuracy_score(..., sample_weight=w)` ([`top_k_accuracy`](crate::top_k_accuracy)'s ranking).
pub fn top_k_accuracy_weighted<T: Copy + Into<f64>>(
    y_true: &[usize],
    scores: &[T],
    n_classes: usize,
    k: usize,
    sample_weight: &[f64],
) -> Result<f64> {
    let s = check_scores(y_true, scores, n_classes)?;
    if k == 0 || k > n_classes {
        return Err(Error::BadK { k, n_classes });
    }
    same_length(y_true.len(), sample_weight)?;
    average(top_k_hits(y_true, &s, n_classes, k).map(|hit| f64::from(u8::from(hit))), sample_weight)
}

/// `log_loss(..., sample_weight=w)`, clipped as [`log_loss`](crate::log_loss).
pub fn log_loss_weighted<T: Probability>(
    y_true: &[usize],
    probs: &[T],
    n_classes: usize,
    sample_weight: &[f64],
) -> Result<f64> {
    let terms = log_losses(y_true, probs, n_classes)?;
    same_length(y_true.len(), sample_weight)?;
    average(terms.into_iter(), sample_weight)
}

/// `brier_score_loss(..., sample_weight=w)` as [`brier_score`](crate::brier_score).
pub fn brier_score_weighted<T: Copy + Into<f64>>(
    y_true: &[usize],
    probs: &[T],
    n_classes: usize,
    sample_weight: &[f64],
) -> Result<f64> {
    let terms = brier_terms(y_true, probs, n_classes)?;
    same_length(y_true.len(), sample_weight)?;
    average(terms.into_iter(), sample_weight)
}

/// `roc_auc_score(y, scores, sample_weight=w)` for binary truth: the weighted ROC
/// curve's area (NaN with one class only, as [`roc_auc`](crate::roc_auc)).
pub fn roc_auc_weighted<T: Copy + Into<f64>>(positive: &[bool], scores: &[T], sample_weight: &[f64]) -> Result<f64> {
    same_length(positive.len(), sample_weight)?;
    roc_auc_of(positive, roc_curve_of(weighted_clf_curve(positive, scores, Some(sample_weight))?)?)
}

/// `average_precision_score(y, scores, sample_weight=w)` for binary truth.
pub fn average_precision_weighted<T: Copy + Into<f64>>(
    positive: &[bool],
    scores: &[T],
    sample_weight: &[f64],
) -> Result<f64> {
    same_length(positive.len(), sample_weight)?;
    Ok(average_precision_of(&pr_curve_of(weighted_clf_curve(positive, scores, Some(sample_weight))?)))
}
