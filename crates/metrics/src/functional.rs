//! scikit-learn's function-style API: `f1_score(y_true, y_pred, average=...)` with its
//! options (`labels`, `sample_weight`, `beta`, `zero_division`), over labels of any
//! type once [`encode_labels`] has numbered them.

use crate::confusion::{nan_average, prf, Average, KappaWeights, Prf, ZeroDivision};
use crate::error::{Error, Result};

/// Which classes the per-class values and averages are over (scikit-learn's `labels`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Labels {
    /// The classes that occur in `y_true` or `y_pred`, sorted (scikit-learn's default).
    #[default]
    Present,
    /// These classes, in this order; one absent from both label sets still counts
    /// (its precision and recall are zero divisions).
    Given(Vec<usize>),
}

/// The options of scikit-learn's `precision_recall_fscore_support`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// The classes to report and average over.
    pub labels: Labels,
    /// One finite weight per sample (`sample_weight`; negative ones count negatively,
    /// as in scikit-learn; all zero is an error); `None` weighs each 1.
    pub sample_weight: Option<Vec<f64>>,
    /// F-beta's beta, in `[0, inf]` (infinity gives the recall); `None` is 1 (F1).
    pub beta: Option<f64>,
    /// What a zero division gives.
    pub zero_division: ZeroDivision,
}

/// Per-class scores of [`precision_recall_fscore`] and their averages.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// The classes of the per-class vectors, in order.
    pub labels: Vec<usize>,
    /// Precision of each class.
    pub precision: Vec<f64>,
    /// Recall of each class.
    pub recall: Vec<f64>,
    /// F-beta of each class.
    pub f_beta: Vec<f64>,
    /// Weighted true count of each class.
    pub support: Vec<f64>,
    /// Macro averages.
    pub macro_avg: Prf,
    /// Micro averages.
    pub micro_avg: Prf,
    /// Support-weighted averages.
    pub weighted_avg: Prf,
}

impl Scores {
    /// The averages of one kind; [`Average::Binary`] gives the values of `pos_label`
    /// when it is one of [`Scores::labels`], NaN otherwise ([`f1_score`] and its
    /// siblings check binary input as scikit-learn does).
    pub fn average(&self, average: Average) -> Prf {
        match average {
            Average::Macro => self.macro_avg,
            Average::Micro => self.micro_avg,
            Average::Weighted => self.weighted_avg,
            Average::Binary { pos_label } => match self.labels.iter().position(|&l| l == pos_label) {
                Some(k) => Prf { precision: self.precision[k], recall: self.recall[k], f_beta: self.f_beta[k] },
                None => Prf { precision: f64::NAN, recall: f64::NAN, f_beta: f64::NAN },
            },
        }
    }
}

/// Checks `sample_weight` against the sample count, as scikit-learn does: finite
/// values (negative ones allowed), not all zero.
pub(crate) fn check_weights(weights: Option<&[f64]>, n: usize) -> Result<()> {
    let Some(w) = weights else { return Ok(()) };
    if w.len() != n {
        return Err(Error::LengthMismatch { y_true: n, other: w.len() });
    }
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(Error::BadWeight { value: w[index], index });
    }
    if w.iter().all(|&v| v == 0.0) {
        return Err(Error::ZeroWeights);
    }
    Ok(())
}

/// `precision_recall_fscore_support` for every average at once, with scikit-learn's
/// labels, weights, beta and zero-division options.
///
/// ```
/// use cnnlab_metrics::{precision_recall_fscore, Average, Labels, Options};
/// // Class 2 occurs in neither list: by default it is not averaged over.
/// let s = precision_recall_fscore(&[0, 1, 1], &[0, 1, 0], &Options::default()).unwrap();
/// assert_eq!(s.labels, vec![0, 1]);
/// let all = Options { labels: Labels::Given(vec![0, 1, 2]), ..Options::default() };
/// let s3 = precision_recall_fscore(&[0, 1, 1], &[0, 1, 0], &all).unwrap();
/// assert!(s3.average(Average::Macro).f_beta < s.average(Average::Macro).f_beta);
/// ```
pub fn precision_recall_fscore(y_true: &[usize], y_pred: &[usize], options: &Options) -> Result<Scores> {
    if y_true.len() != y_pred.len() {
        return Err(Error::LengthMismatch { y_true: y_true.len(), other: y_pred.len() });
    }
    if y_true.is_empty() {
        return Err(Error::Empty);
    }
    let weights = options.sample_weight.as_deref();
    check_weights(weights, y_true.len())?;
    let labels = match &options.labels {
        Labels::Present => {
            let mut l: Vec<usize> = y_true.iter().chain(y_pred).copied().collect();
            l.sort_unstable();
            l.dedup();
            l
        }
        Labels::Given(l) if l.is_empty() => return Err(Error::NoClasses),
        Labels::Given(l) => l.clone(),
    };
    // Weighted true positives, predicted and true counts of each listed class.
    let slot = |c: usize| labels.iter().position(|&l| l == c);
    let (mut tp, mut predicted, mut support) =
        (vec![0.0; labels.len()], vec![0.0; labels.len()], vec![0.0; labels.len()]);
    for (i, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        if let Some(k) = slot(t) {
            support[k] += w;
            if t == p {
                tp[k] += w;
            }
        }
        if let Some(k) = slot(p) {
            predicted[k] += w;
        }
    }
    let beta = options.beta.unwrap_or(1.0);
    if beta.is_nan() || beta < 0.0 {
        return Err(Error::BadBeta(beta));
    }
    let zd = options.zero_division;
    let (mut precision, mut recall, mut f_beta) = (vec![], vec![], vec![]);
    for k in 0..labels.len() {
        let (p, r, f) = prf(tp[k], predicted[k], support[k], beta, zd);
        precision.push(p);
        recall.push(r);
        f_beta.push(f);
    }
    let avg = |w: Option<&[f64]>| Prf {
        precision: nan_average(&precision, w),
        recall: nan_average(&recall, w),
        f_beta: nan_average(&f_beta, w),
    };
    let (macro_avg, weighted_avg) = (avg(None), avg(Some(&support)));
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let (p, r, f) = prf(sum(&tp), sum(&predicted), sum(&support), beta, zd);
    let micro_avg = Prf { precision: p, recall: r, f_beta: f };
    Ok(Scores { labels, precision, recall, f_beta, support, macro_avg, micro_avg, weighted_avg })
}

/// `f1_score(y_true, y_pred, average=...)` with scikit-learn's defaults (the classes
/// present, zero division 0); `Average::Binary { pos_label: 1 }` is scikit-learn's
/// default average and is an error on more than two classes.
///
/// ```
/// use cnnlab_metrics::{f1_score, Average};
/// let f1 = f1_score(&[0, 1, 1, 0], &[0, 1, 0, 0], Average::Binary { pos_label: 1 }).unwrap();
/// assert!((f1 - 2.0 / 3.0).abs() < 1e-12);
/// assert!(f1_score(&[0, 1, 2], &[0, 1, 2], Average::Binary { pos_label: 1 }).is_err());
/// ```
///
/// ```
/// let f1 = cnnlab_metrics::f1_score(&[0, 1, 1, 2], &[0, 1, 2, 2], cnnlab_metrics::Average::Macro).unwrap();
/// assert!((f1 - 7.0 / 9.0).abs() < 1e-12);
/// ```
pub fn f1_score(y_true: &[usize], y_pred: &[usize], average: Average) -> Result<f64> {
    Ok(averaged(y_true, y_pred, average)?.f_beta)
}

/// scikit-learn's defaults for one average; `Binary` checks that at most two classes
/// occur and that `pos_label` is one of them when two do, then scores it alone
/// (`labels=[pos_label]`).
fn averaged(y_true: &[usize], y_pred: &[usize], average: Average) -> Result<Prf> {
    let Average::Binary { pos_label } = average else {
        return Ok(precision_recall_fscore(y_true, y_pred, &Options::default())?.average(average));
    };
    let mut present: Vec<usize> = y_true.iter().chain(y_pred).copied().collect();
    present.sort_unstable();
    present.dedup();
    if present.len() > 2 {
        return Err(Error::NotBinary { classes: present });
    }
    if present.len() == 2 && !present.contains(&pos_label) {
        return Err(Error::PosLabel { pos_label, present });
    }
    let options = Options { labels: Labels::Given(vec![pos_label]), ..Options::default() };
    Ok(precision_recall_fscore(y_true, y_pred, &options)?.macro_avg)
}

/// `precision_score(y_true, y_pred, average=...)` with scikit-learn's defaults.
pub fn precision_score(y_true: &[usize], y_pred: &[usize], average: Average) -> Result<f64> {
    Ok(averaged(y_true, y_pred, average)?.precision)
}

/// `recall_score(y_true, y_pred, average=...)` with scikit-learn's defaults.
pub fn recall_score(y_true: &[usize], y_pred: &[usize], average: Average) -> Result<f64> {
    Ok(averaged(y_true, y_pred, average)?.recall)
}

/// `cohen_kappa_score(y1, y2, weights=...)` over the classes present in either: as in
/// scikit-learn, a linear or quadratic weight is the distance between two classes'
/// positions among the present ones, not between their values (a class absent from
/// both lists takes no position).
///
/// ```
/// use cnnlab_metrics::{cohen_kappa_score, KappaWeights};
/// assert_eq!(cohen_kappa_score(&[0, 1, 2], &[0, 1, 2], KappaWeights::Quadratic).unwrap(), 1.0);
/// // Label 2 is in neither list: 3 is one step from 1, as scikit-learn weighs it.
/// let k = cohen_kappa_score(&[0, 1, 3], &[0, 3, 3], KappaWeights::Linear).unwrap();
/// assert!((k - 2.0 / 3.0).abs() < 1e-12);
/// ```
pub fn cohen_kappa_score(y1: &[usize], y2: &[usize], weights: KappaWeights) -> Result<f64> {
    if y1.len() != y2.len() {
        return Err(Error::LengthMismatch { y_true: y1.len(), other: y2.len() });
    }
    let encoded = encode_labels(y1, y2);
    let cm = crate::ConfusionMatrix::from_labels(&encoded.y_true, &encoded.y_pred, encoded.classes.len().max(1))?;
    Ok(cm.cohen_kappa(weights))
}

/// `accuracy_score(y_true, y_pred)`: the share of samples whose two labels agree.
///
/// ```
/// assert_eq!(cnnlab_metrics::accuracy_score(&[0, 1, 2, 2], &[0, 1, 1, 2]).unwrap(), 0.75);
/// ```
pub fn accuracy_score(y_true: &[usize], y_pred: &[usize]) -> Result<f64> {
    if y_true.len() != y_pred.len() {
        return Err(Error::LengthMismatch { y_true: y_true.len(), other: y_pred.len() });
    }
    if y_true.is_empty() {
        return Err(Error::Empty);
    }
    Ok(y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count() as f64 / y_true.len() as f64)
}

/// Labels of any ordered type numbered for this crate: `classes` sorted and
/// deduplicated (as scikit-learn's `unique_labels`), each label its index there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded<T> {
    /// The distinct labels of both lists, sorted: `classes[i]` is class `i`.
    pub classes: Vec<T>,
    /// `y_true` as class indices.
    pub y_true: Vec<usize>,
    /// `y_pred` as class indices.
    pub y_pred: Vec<usize>,
}

/// Numbers string (or any ordered) labels so every metric of this crate takes them.
///
/// ```
/// let e = cnnlab_metrics::encode_labels(&["cat", "dog", "dog"], &["cat", "cat", "dog"]);
/// assert_eq!(e.classes, ["cat", "dog"]);
/// assert_eq!((e.y_true, e.y_pred), (vec![0, 1, 1], vec![0, 0, 1]));
/// ```
pub fn encode_labels<T: Ord + Clone>(y_true: &[T], y_pred: &[T]) -> Encoded<T> {
    let mut classes: Vec<T> = y_true.iter().chain(y_pred).cloned().collect();
    classes.sort();
    classes.dedup();
    let index = |v: &T| classes.binary_search(v).unwrap_or_else(|_| unreachable!("every label is a class"));
    let (t, p) = (y_true.iter().map(index).collect(), y_pred.iter().map(index).collect());
    Encoded { classes, y_true: t, y_pred: p }
}
