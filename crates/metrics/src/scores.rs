//! Metrics of scores (probabilities or any monotone confidence): ROC, AUC, top-k,
//! log loss. Scores are row-major `n_samples x n_classes`.

use serde::Serialize;

use crate::confusion::check_labels;
use crate::error::{Error, Result};

/// Checks shapes and values of a score matrix and returns it as f64.
pub(crate) fn check_scores<T: Copy + Into<f64>>(y_true: &[usize], scores: &[T], n_classes: usize) -> Result<Vec<f64>> {
    if y_true.is_empty() {
        return Err(Error::Empty);
    }
    check_labels(y_true, n_classes)?;
    if scores.len() != y_true.len() * n_classes {
        return Err(Error::ScoreShape { len: scores.len(), n_samples: y_true.len(), n_classes });
    }
    let out: Vec<f64> = scores.iter().map(|&s| s.into()).collect();
    match out.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NonFiniteScore { value: out[i], index: i / n_classes }),
        None => Ok(out),
    }
}

/// scikit-learn's `roc_curve(drop_intermediate=True)`: false and true positive rates
/// at decreasing thresholds, starting at (0, 0) with threshold +inf.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// ROC curve of binary truth `positive` against `scores`. Errors if either class is
/// absent (the rates would divide by zero).
pub fn roc_curve<T: Copy + Into<f64>>(positive: &[bool], scores: &[T]) -> Result<RocCurve> {
    if positive.len() != scores.len() {
        return Err(Error::LengthMismatch { y_true: positive.len(), other: scores.len() });
    }
    if positive.is_empty() {
        return Err(Error::Empty);
    }
    let s: Vec<f64> = scores.iter().map(|&v| v.into()).collect();
    if let Some(i) = s.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteScore { value: s[i], index: i });
    }
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 || n_pos == positive.len() {
        let missing = if n_pos == 0 { "positive" } else { "negative" };
        return Err(Error::UndefinedAuc { class: 1, missing });
    }
    // Descending by score; ties keep no particular order (only cumulative counts at
    // distinct thresholds matter).
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let (mut tps, mut fps, mut thr) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    for (rank, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_threshold = order.get(rank + 1).is_none_or(|&j| s[j] != s[i]);
        if last_of_threshold {
            tps.push(tp);
            fps.push(fp);
            thr.push(s[i]);
        }
    }
    // drop_intermediate: keep points where the curve changes direction.
    let keep: Vec<usize> = (0..tps.len())
        .filter(|&k| {
            k == 0 || k + 1 == tps.len() || {
                let d2 = |v: &[f64]| v[k + 1] - 2.0 * v[k] + v[k - 1];
                d2(&fps) != 0.0 || d2(&tps) != 0.0
            }
        })
        .collect();
    let (last_tp, last_fp) = (tp, fp);
    let mut curve = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
    for k in keep {
        curve.fpr.push(fps[k] / last_fp);
        curve.tpr.push(tps[k] / last_tp);
        curve.thresholds.push(thr[k]);
    }
    Ok(curve)
}

/// Area under the ROC curve by trapezoids over distinct thresholds
/// (`roc_auc_score` for binary targets).
pub fn roc_auc<T: Copy + Into<f64>>(positive: &[bool], scores: &[T]) -> Result<f64> {
    let c = roc_curve(positive, scores)?;
    Ok(c.fpr.windows(2).zip(c.tpr.windows(2)).map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0).sum())
}

/// One-vs-rest ROC AUC per class, `None` for a class that has no positive or no
/// negative sample in `y_true`.
pub fn roc_auc_ovr_per_class<T: Copy + Into<f64>>(
    y_true: &[usize],
    scores: &[T],
    n_classes: usize,
) -> Result<Vec<Option<f64>>> {
    let s = check_scores(y_true, scores, n_classes)?;
    (0..n_classes)
        .map(|k| {
            let positive: Vec<bool> = y_true.iter().map(|&t| t == k).collect();
            let column: Vec<f64> = s.chunks_exact(n_classes).map(|row| row[k]).collect();
            match roc_auc(&positive, &column) {
                Ok(auc) => Ok(Some(auc)),
                Err(Error::UndefinedAuc { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .collect()
}

/// `roc_auc_score(multi_class="ovr")` as (macro, weighted). Strict, like
/// scikit-learn: a class with no positive or no negative sample is an error naming it.
pub fn roc_auc_ovr<T: Copy + Into<f64>>(y_true: &[usize], scores: &[T], n_classes: usize) -> Result<(f64, f64)> {
    let per = roc_auc_ovr_per_class(y_true, scores, n_classes)?;
    if let Some(class) = per.iter().position(Option::is_none) {
        let missing = if y_true.contains(&class) { "negative" } else { "positive" };
        return Err(Error::UndefinedAuc { class, missing });
    }
    let (m, w) = roc_auc_ovr_lenient(y_true, &per, n_classes);
    Ok((m.expect("all defined"), w.expect("all defined")))
}

/// Lenient averages: over the classes whose AUC is defined (macro: plain mean,
/// weighted: by support). `None` when no class is defined.
pub fn roc_auc_ovr_lenient(
    y_true: &[usize],
    per_class: &[Option<f64>],
    n_classes: usize,
) -> (Option<f64>, Option<f64>) {
    let mut support = vec![0u64; n_classes];
    for &t in y_true {
        support[t] += 1;
    }
    let defined: Vec<(f64, f64)> =
        per_class.iter().zip(&support).filter_map(|(a, &s)| a.map(|a| (a, s as f64))).collect();
    if defined.is_empty() {
        return (None, None);
    }
    let macro_ = defined.iter().map(|(a, _)| a).sum::<f64>() / defined.len() as f64;
    let total: f64 = defined.iter().map(|(_, s)| s).sum();
    let weighted = defined.iter().map(|(a, s)| a * s).sum::<f64>() / total;
    (Some(macro_), Some(weighted))
}

/// Fraction of samples whose true class is among the `k` highest scores
/// (`top_k_accuracy_score`; among equal scores the higher class index ranks first,
/// as scikit-learn's reversed stable argsort does).
pub fn top_k_accuracy<T: Copy + Into<f64>>(y_true: &[usize], scores: &[T], n_classes: usize, k: usize) -> Result<f64> {
    let s = check_scores(y_true, scores, n_classes)?;
    if k == 0 || k > n_classes {
        return Err(Error::BadK { k, n_classes });
    }
    let hits = y_true
        .iter()
        .zip(s.chunks_exact(n_classes))
        .filter(|(&t, row)| {
            let rank = (0..n_classes).filter(|&j| row[j] > row[t] || (row[j] == row[t] && j > t)).count();
            rank < k
        })
        .count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// Mean negative log-likelihood of the true class, with probabilities clipped to
/// `[eps, 1 - eps]` (f64 machine epsilon), as `log_loss`.
pub fn log_loss<T: Copy + Into<f64>>(y_true: &[usize], probs: &[T], n_classes: usize) -> Result<f64> {
    let s = check_scores(y_true, probs, n_classes)?;
    let eps = f64::EPSILON;
    let total: f64 =
        y_true.iter().zip(s.chunks_exact(n_classes)).map(|(&t, row)| -row[t].clamp(eps, 1.0 - eps).ln()).sum();
    Ok(total / y_true.len() as f64)
}

/// Index of the highest score in each row (first on ties, as `np.argmax`).
pub fn argmax_rows<T: Copy + Into<f64>>(scores: &[T], n_classes: usize) -> Vec<usize> {
    scores
        .chunks_exact(n_classes.max(1))
        .map(|row| {
            let mut best = 0;
            for j in 1..row.len() {
                if row[j].into() > row[best].into() {
                    best = j;
                }
            }
            best
        })
        .collect()
}
