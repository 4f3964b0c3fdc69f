//! Metrics of scores: ROC, AUC, precision-recall and average precision, top-k (any
//! monotone confidence) and log loss and Brier score (probabilities only). Scores are
//! row-major `n_samples x n_classes`.

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

/// Checks a probability matrix: scores that are finite, in [0, 1], and whose rows sum
/// to 1 within `sqrt(f32::EPSILON)`.
pub(crate) fn check_probabilities<T: Copy + Into<f64>>(
    y_true: &[usize],
    probs: &[T],
    n_classes: usize,
) -> Result<Vec<f64>> {
    let p = check_scores(y_true, probs, n_classes)?;
    if let Some(i) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(Error::NotProbability { value: p[i], index: i / n_classes });
    }
    let tolerance = f64::from(f32::EPSILON).sqrt();
    for (index, row) in p.chunks_exact(n_classes).enumerate() {
        let sum: f64 = row.iter().sum();
        if (sum - 1.0).abs() > tolerance {
            return Err(Error::RowSum { sum, index });
        }
    }
    Ok(p)
}

/// Whether a score matrix is one of probabilities ([`check_probabilities`] passes).
pub(crate) fn are_probabilities(y_true: &[usize], scores: &[f64], n_classes: usize) -> bool {
    check_probabilities(y_true, scores, n_classes).is_ok()
}

/// scikit-learn's `roc_curve(drop_intermediate=True)`: false and true positive rates
/// at decreasing thresholds, starting at (0, 0) with threshold +inf.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RocCurve {
    /// False positive rate at each threshold.
    pub fpr: Vec<f64>,
    /// True positive rate at each threshold.
    pub tpr: Vec<f64>,
    /// The thresholds, decreasing (the first is +inf).
    pub thresholds: Vec<f64>,
}

/// Cumulative true and false positives at each distinct score, highest first
/// (scikit-learn's `_binary_clf_curve`): (tps, fps, thresholds).
fn binary_clf_curve<T: Copy + Into<f64>>(positive: &[bool], scores: &[T]) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    weighted_clf_curve(positive, scores, None)
}

/// [`binary_clf_curve`] with each sample counted by its weight (`sample_weight`).
pub(crate) fn weighted_clf_curve<T: Copy + Into<f64>>(
    positive: &[bool],
    scores: &[T],
    weights: Option<&[f64]>,
) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    crate::functional::check_weights(weights, positive.len())?;
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
    // Descending by score; ties keep no particular order (only cumulative counts at
    // distinct thresholds matter).
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let (mut tps, mut fps, mut thr) = (Vec::new(), Vec::new(), Vec::new());
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    for (rank, &i) in order.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        if positive[i] {
            tp += w;
        } else {
            fp += w;
        }
        let last_of_threshold = order.get(rank + 1).is_none_or(|&j| s[j] != s[i]);
        if last_of_threshold {
            tps.push(tp);
            fps.push(fp);
            thr.push(s[i]);
        }
    }
    Ok((tps, fps, thr))
}

/// ROC curve of binary truth `positive` against `scores`. With no negative (or no
/// positive) sample the false (true) positive rates are NaN, as scikit-learn's are.
///
/// ```
/// let c = cnnlab_metrics::roc_curve(&[false, true, true], &[0.1, 0.8, 0.4]).unwrap();
/// assert_eq!(c.tpr, vec![0.0, 0.5, 1.0, 1.0]);
/// assert_eq!(c.fpr, vec![0.0, 0.0, 0.0, 1.0]);
/// ```
pub fn roc_curve<T: Copy + Into<f64>>(positive: &[bool], scores: &[T]) -> Result<RocCurve> {
    roc_curve_of(binary_clf_curve(positive, scores)?)
}

/// The ROC curve of a [`weighted_clf_curve`].
pub(crate) fn roc_curve_of((tps, fps, thr): (Vec<f64>, Vec<f64>, Vec<f64>)) -> Result<RocCurve> {
    let (tp, fp) = (tps[tps.len() - 1], fps[fps.len() - 1]);
    // drop_intermediate: keep points where the curve changes direction.
    let keep: Vec<usize> = (0..tps.len())
        .filter(|&k| {
            k == 0 || k + 1 == tps.len() || {
                let d2 = |v: &[f64]| v[k + 1] - 2.0 * v[k] + v[k - 1];
                d2(&fps) != 0.0 || d2(&tps) != 0.0
            }
        })
        .collect();
    // 0 / 0 is NaN: a rate of a class that is absent.
    let mut curve = RocCurve { fpr: vec![0.0 / fp], tpr: vec![0.0 / tp], thresholds: vec![f64::INFINITY] };
    for k in keep {
        curve.fpr.push(fps[k] / fp);
        curve.tpr.push(tps[k] / tp);
        curve.thresholds.push(thr[k]);
    }
    Ok(curve)
}

/// Area under the ROC curve by trapezoids over distinct thresholds
/// (`roc_auc_score` for binary targets): NaN when `positive` holds one class only, as
/// scikit-learn 1.9 returns (with a warning).
///
/// ```
/// assert_eq!(cnnlab_metrics::roc_auc(&[false, true, true], &[0.1, 0.8, 0.4]).unwrap(), 1.0);
/// assert!(cnnlab_metrics::roc_auc(&[true, true], &[0.1, 0.8]).unwrap().is_nan());
/// ```
pub fn roc_auc<T: Copy + Into<f64>>(positive: &[bool], scores: &[T]) -> Result<f64> {
    roc_auc_of(positive, roc_curve(positive, scores)?)
}

/// The area under `c`, NaN when `positive` holds one class only.
pub(crate) fn roc_auc_of(positive: &[bool], c: RocCurve) -> Result<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 || n_pos == positive.len() {
        return Ok(f64::NAN);
    }
    Ok(c.fpr.windows(2).zip(c.tpr.windows(2)).map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0).sum())
}

/// scikit-learn's `precision_recall_curve`: precision and recall at increasing
/// thresholds, ending at (recall 0, precision 1) with no threshold.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PrCurve {
    /// Precision at each threshold, then 1.
    pub precision: Vec<f64>,
    /// Recall at each threshold, then 0.
    pub recall: Vec<f64>,
    /// The distinct scores, increasing.
    pub thresholds: Vec<f64>,
}

/// Precision-recall curve of binary truth `positive` against `scores`
/// (`precision_recall_curve(drop_intermediate=False)`); recall without a positive
/// sample is 1, as scikit-learn sets it (with a warning).
pub fn precision_recall_curve<T: Copy + Into<f64>>(positive: &[bool], scores: &[T]) -> Result<PrCurve> {
    Ok(pr_curve_of(binary_clf_curve(positive, scores)?))
}

/// The precision-recall curve of a [`weighted_clf_curve`].
pub(crate) fn pr_curve_of((tps, fps, thr): (Vec<f64>, Vec<f64>, Vec<f64>)) -> PrCurve {
    let total_tp = tps[tps.len() - 1];
    let mut curve = PrCurve { precision: vec![], recall: vec![], thresholds: vec![] };
    for k in (0..tps.len()).rev() {
        let predicted = tps[k] + fps[k];
        curve.precision.push(if predicted == 0.0 { 1.0 } else { tps[k] / predicted });
        // Without a positive sample scikit-learn sets every recall to 1.
        curve.recall.push(if total_tp == 0.0 { 1.0 } else { tps[k] / total_tp });
        curve.thresholds.push(thr[k]);
    }
    curve.precision.push(1.0);
    curve.recall.push(0.0);
    curve
}

/// Average precision (`average_precision_score`, binary): the precision at each
/// threshold weighted by the recall gained there.
///
/// ```
/// let ap = cnnlab_metrics::average_precision(&[false, true, true, false], &[0.1, 0.4, 0.35, 0.8]).unwrap();
/// assert!((ap - 0.5833333333333333).abs() < 1e-15);
/// ```
pub fn average_precision<T: Copy + Into<f64>>(positive: &[bool], scores: &[T]) -> Result<f64> {
    Ok(average_precision_of(&precision_recall_curve(positive, scores)?))
}

/// The step-wise area under a precision-recall curve.
pub(crate) fn average_precision_of(c: &PrCurve) -> f64 {
    -(0..c.recall.len() - 1).map(|k| (c.recall[k + 1] - c.recall[k]) * c.precision[k]).sum::<f64>()
}

/// One-vs-rest average precision per class, averaged (macro, weighted by support), as
/// `average_precision_score(label_binarize(y_true), scores, average=...)`.
pub fn average_precision_ovr<T: Copy + Into<f64>>(
    y_true: &[usize],
    scores: &[T],
    n_classes: usize,
) -> Result<Averages> {
    let s = check_scores(y_true, scores, n_classes)?;
    let mut per = Vec::with_capacity(n_classes);
    for k in 0..n_classes {
        let positive: Vec<bool> = y_true.iter().map(|&t| t == k).collect();
        let column: Vec<f64> = s.chunks_exact(n_classes).map(|row| row[k]).collect();
        per.push(average_precision(&positive, &column)?);
    }
    Ok(Averages::of(&per, y_true, n_classes))
}

/// A per-class score and its macro and support-weighted means.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Averages {
    /// The score of each class (NaN where undefined).
    pub per_class: Vec<f64>,
    /// The plain mean (NaN when a class is NaN, as scikit-learn's).
    pub macro_avg: f64,
    /// The mean weighted by each class's count in `y_true` (a class with no sample
    /// weighs nothing, even when its score is NaN, as in scikit-learn).
    pub weighted: f64,
}

impl Averages {
    fn of(per_class: &[f64], y_true: &[usize], n_classes: usize) -> Self {
        let mut support = vec![0.0; n_classes];
        for &t in y_true {
            support[t] += 1.0;
        }
        let total: f64 = support.iter().sum();
        let macro_avg = per_class.iter().sum::<f64>() / n_classes as f64;
        let weighted =
            per_class.iter().zip(&support).filter(|(_, &s)| s > 0.0).map(|(a, s)| a * s).sum::<f64>() / total;
        Averages { per_class: per_class.to_vec(), macro_avg, weighted }
    }
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
            roc_auc(&positive, &column).map(|auc| (!auc.is_nan()).then_some(auc))
        })
        .collect()
}

/// `roc_auc_score(multi_class="ovr", labels=range(n_classes))`: per class and its
/// macro and weighted means, NaN where a class has no positive or no negative sample
/// (as scikit-learn 1.9; [`roc_auc_ovr_lenient`] averages over the defined classes).
///
/// ```
/// let scores = [0.5, 0.3, 0.2, 0.2, 0.5, 0.3, 0.1, 0.6, 0.3, 0.7, 0.2, 0.1];
/// let auc = cnnlab_metrics::roc_auc_ovr(&[0, 1, 1, 0], &scores, 3).unwrap();
/// assert_eq!(auc.per_class[0], 1.0);
/// assert!(auc.macro_avg.is_nan(), "class 2 never occurs");
/// ```
pub fn roc_auc_ovr<T: Copy + Into<f64>>(y_true: &[usize], scores: &[T], n_classes: usize) -> Result<Averages> {
    let per = roc_auc_ovr_per_class(y_true, scores, n_classes)?;
    let per: Vec<f64> = per.iter().map(|a| a.unwrap_or(f64::NAN)).collect();
    Ok(Averages::of(&per, y_true, n_classes))
}

/// Lenient averages: over the classes whose AUC is defined (macro: plain mean,
/// weighted: by support). `None` when no class is defined; a label at or above
/// `n_classes`, or `per_class` of another length, is an error.
pub fn roc_auc_ovr_lenient(
    y_true: &[usize],
    per_class: &[Option<f64>],
    n_classes: usize,
) -> Result<(Option<f64>, Option<f64>)> {
    if per_class.len() != n_classes {
        return Err(Error::ClassCountMismatch { left: n_classes, right: per_class.len() });
    }
    let mut support = vec![0u64; n_classes];
    for &t in y_true {
        *support.get_mut(t).ok_or(Error::ClassOutOfRange { class: t, n_classes })? += 1;
    }
    let defined: Vec<(f64, f64)> =
        per_class.iter().zip(&support).filter_map(|(a, &s)| a.map(|a| (a, s as f64))).collect();
    if defined.is_empty() {
        return Ok((None, None));
    }
    let macro_ = defined.iter().map(|(a, _)| a).sum::<f64>() / defined.len() as f64;
    let total: f64 = defined.iter().map(|(_, s)| s).sum();
    let weighted = defined.iter().map(|(a, s)| a * s).sum::<f64>() / total;
    Ok((Some(macro_), Some(weighted)))
}

/// Fraction of samples whose true class is among the `k` highest scores
/// (`top_k_accuracy_score`; among equal scores the higher class index ranks first,
/// as scikit-learn's reversed stable argsort does). With two classes and `k = 1`
/// class 1 is predicted only when its score is above class 0's, as scikit-learn
/// thresholds a binary score (and as [`argmax_rows`] picks): a 0.5 / 0.5 tie is class 0.
pub fn top_k_accuracy<T: Copy + Into<f64>>(y_true: &[usize], scores: &[T], n_classes: usize, k: usize) -> Result<f64> {
    let s = check_scores(y_true, scores, n_classes)?;
    if k == 0 || k > n_classes {
        return Err(Error::BadK { k, n_classes });
    }
    let hits = top_k_hits(y_true, &s, n_classes, k).filter(|&hit| hit).count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// Whether each sample's true class is among its `k` highest scores (checked input).
pub(crate) fn top_k_hits<'a>(
    y_true: &'a [usize],
    s: &'a [f64],
    n_classes: usize,
    k: usize,
) -> impl Iterator<Item = bool> + 'a {
    y_true.iter().zip(s.chunks_exact(n_classes)).map(move |(&t, row)| {
        if n_classes == 2 && k == 1 {
            return usize::from(row[1] > row[0]) == t;
        }
        let rank = (0..n_classes).filter(|&j| row[j] > row[t] || (row[j] == row[t] && j > t)).count();
        rank < k
    })
}

/// A probability's float type, with the machine epsilon [`log_loss`] clips at (as
/// scikit-learn clips at `np.finfo(y_pred.dtype).eps`).
pub trait Probability: Copy + Into<f64> {
    /// The type's machine epsilon, as f64.
    const EPSILON: f64;
}

impl Probability for f32 {
    const EPSILON: f64 = f32::EPSILON as f64;
}

impl Probability for f64 {
    const EPSILON: f64 = f64::EPSILON;
}

/// Mean negative log-likelihood of the true class, with probabilities clipped to
/// `[eps, 1 - eps]`, eps the machine epsilon of the probabilities' type (1.19e-7 for
/// f32, 2.2e-16 for f64), as `log_loss`. Scores that are not probabilities (logits,
/// rows not summing to 1) are an error naming the first bad row.
///
/// ```
/// use cnnlab_metrics::{log_loss, Error};
/// assert!((log_loss(&[0, 1], &[0.9, 0.1, 0.2, 0.8], 2).unwrap() - 0.164252033486018).abs() < 1e-12);
/// assert!(matches!(log_loss(&[0], &[2.5, -1.0], 2), Err(Error::NotProbability { index: 0, .. })));
/// // A softmax row that underflows in f32: clipped at f32's epsilon.
/// let f32_loss = log_loss(&[0], &[1.39e-11f32, 1.0], 2).unwrap();
/// assert!((f32_loss - 15.942385).abs() < 1e-5);
/// ```
pub fn log_loss<T: Probability>(y_true: &[usize], probs: &[T], n_classes: usize) -> Result<f64> {
    let total: f64 = log_losses(y_true, probs, n_classes)?.iter().sum();
    Ok(total / y_true.len() as f64)
}

/// Each sample's clipped negative log-likelihood ([`log_loss`]'s terms).
pub(crate) fn log_losses<T: Probability>(y_true: &[usize], probs: &[T], n_classes: usize) -> Result<Vec<f64>> {
    let s = check_probabilities(y_true, probs, n_classes)?;
    let eps = T::EPSILON;
    Ok(y_true.iter().zip(s.chunks_exact(n_classes)).map(|(&t, row)| -row[t].clamp(eps, 1.0 - eps).ln()).collect())
}

/// The Brier score of probabilities (`brier_score_loss`): for two classes the mean
/// squared error of class 1's probability, for more the mean over samples of the
/// squared distance between the row and the one-hot truth.
///
/// ```
/// let b = cnnlab_metrics::brier_score(&[0, 1, 1], &[0.9, 0.1, 0.3, 0.7, 0.4, 0.6], 2).unwrap();
/// assert!((b - 0.08666666666666667).abs() < 1e-15);
/// ```
pub fn brier_score<T: Copy + Into<f64>>(y_true: &[usize], probs: &[T], n_classes: usize) -> Result<f64> {
    let total: f64 = brier_terms(y_true, probs, n_classes)?.iter().sum();
    Ok(total / y_true.len() as f64)
}

/// Each sample's squared error ([`brier_score`]'s terms).
pub(crate) fn brier_terms<T: Copy + Into<f64>>(y_true: &[usize], probs: &[T], n_classes: usize) -> Result<Vec<f64>> {
    let p = check_probabilities(y_true, probs, n_classes)?;
    Ok(y_true
        .iter()
        .zip(p.chunks_exact(n_classes))
        .map(|(&t, row)| {
            if n_classes == 2 {
                (f64::from(u8::from(t == 1)) - row[1]).powi(2)
            } else {
                row.iter().enumerate().map(|(k, &v)| (f64::from(u8::from(k == t)) - v).powi(2)).sum()
            }
        })
        .collect())
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
