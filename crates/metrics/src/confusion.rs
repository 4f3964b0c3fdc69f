//! The confusion matrix and every metric that is a function of it.

use crate::error::{Error, Result};

/// What a ratio with a zero denominator becomes, as scikit-learn's `zero_division`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ZeroDivision {
    /// scikit-learn's default ("warn" behaves as 0).
    #[default]
    Zero,
    /// The ratio is 1.
    One,
    /// The ratio is NaN, and averages skip it (scikit-learn's `zero_division=np.nan`:
    /// macro and weighted averages are over the classes where it is defined).
    Nan,
}

impl ZeroDivision {
    pub(crate) fn value(self) -> f64 {
        match self {
            ZeroDivision::Zero => 0.0,
            ZeroDivision::One => 1.0,
            ZeroDivision::Nan => f64::NAN,
        }
    }

    pub(crate) fn divide(self, num: f64, den: f64) -> f64 {
        if den == 0.0 {
            self.value()
        } else {
            num / den
        }
    }
}

/// How per-class values are combined (scikit-learn's `average`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// The unweighted mean over classes.
    Macro,
    /// Computed from the total true positives, false positives and false negatives.
    Micro,
    /// The mean over classes weighted by their support (true count).
    Weighted,
    /// The values of the positive class alone (scikit-learn's default
    /// `average="binary"` with `pos_label`).
    Binary {
        /// The positive class (scikit-learn's `pos_label`, 1 by default).
        pos_label: usize,
    },
}

/// Per-class precision, recall, F-beta and support.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PerClass {
    /// Precision of each class.
    pub precision: Vec<f64>,
    /// Recall of each class.
    pub recall: Vec<f64>,
    /// F-beta of each class.
    pub f_beta: Vec<f64>,
    /// True samples of each class.
    pub support: Vec<u64>,
}

/// Averaged precision, recall and F-beta.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Prf {
    /// Averaged precision.
    pub precision: f64,
    /// Averaged recall.
    pub recall: f64,
    /// Averaged F-beta (F1 for beta = 1).
    pub f_beta: f64,
}

/// Precision, recall and F-beta of one class from its true positives, predicted count
/// and true count (weighted counts allowed), as scikit-learn computes them.
pub(crate) fn prf(tp: f64, predicted: f64, support: f64, beta: f64, zd: ZeroDivision) -> (f64, f64, f64) {
    let (fp, fn_) = (predicted - tp, support - tp);
    let (precision, recall) = (zd.divide(tp, predicted), zd.divide(tp, support));
    if beta == f64::INFINITY {
        // F-beta tends to the recall (scikit-learn's `np.isposinf(beta)` case).
        return (precision, recall, recall);
    }
    let b2 = beta * beta;
    (precision, recall, zd.divide((1.0 + b2) * tp, (1.0 + b2) * tp + b2 * fn_ + fp))
}

/// The mean of `values` weighted by `weights` (all 1 for a macro average), skipping NaN
/// values and their weights (scikit-learn's `_nanaverage`); NaN when nothing is left,
/// and the plain mean when the weights left sum to zero (scikit-learn's fallback).
pub(crate) fn nan_average(values: &[f64], weights: Option<&[f64]>) -> f64 {
    let kept: Vec<(f64, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_nan())
        .map(|(k, &v)| (v, weights.map_or(1.0, |w| w[k])))
        .collect();
    if kept.is_empty() {
        return f64::NAN;
    }
    let total: f64 = kept.iter().map(|(_, w)| w).sum();
    if total == 0.0 {
        return kept.iter().map(|(v, _)| v).sum::<f64>() / kept.len() as f64;
    }
    kept.iter().map(|(v, w)| v * w).sum::<f64>() / total
}

/// How disagreements count in Cohen's kappa (scikit-learn's `weights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KappaWeights {
    /// Every disagreement counts 1 (plain kappa).
    #[default]
    None,
    /// A disagreement counts by the distance between the classes.
    Linear,
    /// A disagreement counts by the squared distance between the classes.
    Quadratic,
}

/// Rows are true classes, columns predicted classes (scikit-learn's layout).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConfusionMatrix {
    n_classes: usize,
    counts: Vec<u64>,
}

pub(crate) fn check_labels(labels: &[usize], n_classes: usize) -> Result<()> {
    if n_classes == 0 {
        return Err(Error::NoClasses);
    }
    match labels.iter().enumerate().find(|(_, &l)| l >= n_classes) {
        Some((index, &label)) => Err(Error::LabelOutOfRange { label, index, n_classes }),
        None => Ok(()),
    }
}

pub(crate) fn check_pair(y_true: &[usize], y_pred: &[usize], n_classes: usize) -> Result<()> {
    if y_true.len() != y_pred.len() {
        return Err(Error::LengthMismatch { y_true: y_true.len(), other: y_pred.len() });
    }
    if y_true.is_empty() {
        return Err(Error::Empty);
    }
    check_labels(y_true, n_classes)?;
    check_labels(y_pred, n_classes)
}

impl ConfusionMatrix {
    /// An empty matrix, to be filled with [`ConfusionMatrix::add`].
    pub fn new(n_classes: usize) -> Result<Self> {
        if n_classes == 0 {
            return Err(Error::NoClasses);
        }
        Ok(Self { n_classes, counts: vec![0; n_classes * n_classes] })
    }

    /// The matrix of labels `y_true` against `y_pred`, both below `n_classes`
    /// (`confusion_matrix(labels=range(n_classes))`).
    ///
    /// ```
    /// let cm = cnnlab_metrics::ConfusionMatrix::from_labels(&[0, 1, 1], &[0, 1, 0], 2).unwrap();
    /// assert_eq!(cm.rows(), vec![vec![1, 0], vec![1, 1]]);
    /// ```
    pub fn from_labels(y_true: &[usize], y_pred: &[usize], n_classes: usize) -> Result<Self> {
        check_pair(y_true, y_pred, n_classes)?;
        let mut cm = Self::new(n_classes)?;
        for (&t, &p) in y_true.iter().zip(y_pred) {
            cm.counts[t * n_classes + p] += 1;
        }
        Ok(cm)
    }

    /// A matrix from row-major counts (`counts[t * n_classes + p]`), which must hold
    /// `n_classes^2` values.
    pub(crate) fn from_counts(counts: Vec<u64>, n_classes: usize) -> Self {
        debug_assert_eq!(counts.len(), n_classes * n_classes);
        Self { n_classes, counts }
    }

    /// Adds a batch; labels are checked first, so an error adds nothing.
    pub fn add(&mut self, y_true: &[usize], y_pred: &[usize]) -> Result<()> {
        let other = Self::from_labels(y_true, y_pred, self.n_classes)?;
        self.counts.iter_mut().zip(other.counts).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Adds another matrix's counts (batches evaluated apart, e.g. by two workers).
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        if other.n_classes != self.n_classes {
            return Err(Error::ClassCountMismatch { left: self.n_classes, right: other.n_classes });
        }
        self.counts.iter_mut().zip(&other.counts).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Sets every count to zero.
    pub fn reset(&mut self) {
        self.counts.fill(0);
    }

    /// The number of classes (rows and columns).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Samples of true class `t` predicted as `p`; `None` when either is not a class.
    pub fn get(&self, t: usize, p: usize) -> Option<u64> {
        (t < self.n_classes && p < self.n_classes).then(|| self.cell(t, p))
    }

    pub(crate) fn cell(&self, t: usize, p: usize) -> u64 {
        self.counts[t * self.n_classes + p]
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts.chunks(self.n_classes).map(<[u64]>::to_vec).collect()
    }

    /// Every sample counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn diag(&self) -> Vec<u64> {
        (0..self.n_classes).map(|k| self.cell(k, k)).collect()
    }

    /// True count of each class (row sums).
    pub fn support(&self) -> Vec<u64> {
        (0..self.n_classes).map(|t| (0..self.n_classes).map(|p| self.cell(t, p)).sum()).collect()
    }

    /// Predicted count of each class (column sums).
    pub fn predicted(&self) -> Vec<u64> {
        (0..self.n_classes).map(|p| (0..self.n_classes).map(|t| self.cell(t, p)).sum()).collect()
    }

    /// The share of samples on the diagonal (`accuracy_score`).
    pub fn accuracy(&self) -> f64 {
        self.diag().iter().sum::<u64>() as f64 / self.total().max(1) as f64
    }

    /// Mean recall over the classes present in y_true (`balanced_accuracy_score`).
    pub fn balanced_accuracy(&self) -> f64 {
        let recalls: Vec<f64> =
            self.support().iter().zip(self.diag()).filter(|(&s, _)| s > 0).map(|(&s, d)| d as f64 / s as f64).collect();
        recalls.iter().sum::<f64>() / recalls.len().max(1) as f64
    }

    /// `precision_recall_fscore_support(average=None, beta=beta)`.
    pub fn per_class(&self, beta: f64, zero_division: ZeroDivision) -> PerClass {
        let (support, predicted, diag) = (self.support(), self.predicted(), self.diag());
        let mut out = PerClass { precision: vec![], recall: vec![], f_beta: vec![], support: support.clone() };
        for k in 0..self.n_classes {
            let (p, r, f) = prf(diag[k] as f64, predicted[k] as f64, support[k] as f64, beta, zero_division);
            out.precision.push(p);
            out.recall.push(r);
            out.f_beta.push(f);
        }
        out
    }

    /// Averaged precision, recall and F-beta over all `n_classes` classes, as
    /// `precision_recall_fscore_support(labels=range(n_classes), average=...)`; with
    /// [`ZeroDivision::Nan`] the averages skip undefined classes. For scikit-learn's
    /// default labels (only the classes present) use [`crate::precision_recall_fscore`].
    pub fn averaged(&self, average: Average, beta: f64, zero_division: ZeroDivision) -> Prf {
        match average {
            Average::Micro => {
                let tp = self.diag().iter().sum::<u64>() as f64;
                let total = self.total() as f64;
                let (precision, recall, f_beta) = prf(tp, total, total, beta, zero_division);
                Prf { precision, recall, f_beta }
            }
            Average::Binary { pos_label } => {
                let (tp, predicted, support) = if pos_label < self.n_classes {
                    let k = pos_label;
                    (self.diag()[k] as f64, self.predicted()[k] as f64, self.support()[k] as f64)
                } else {
                    (0.0, 0.0, 0.0)
                };
                let (precision, recall, f_beta) = prf(tp, predicted, support, beta, zero_division);
                Prf { precision, recall, f_beta }
            }
            Average::Macro | Average::Weighted => {
                let pc = self.per_class(beta, zero_division);
                let support: Vec<f64> = pc.support.iter().map(|&s| s as f64).collect();
                let weights = (average == Average::Weighted).then_some(&support[..]);
                Prf {
                    precision: nan_average(&pc.precision, weights),
                    recall: nan_average(&pc.recall, weights),
                    f_beta: nan_average(&pc.f_beta, weights),
                }
            }
        }
    }

    /// Cohen's kappa of the two label sets the matrix counts (`cohen_kappa_score`).
    pub fn cohen_kappa(&self, weights: KappaWeights) -> f64 {
        let total = self.total() as f64;
        let (rows, cols) = (self.support(), self.predicted());
        let (mut observed, mut expected) = (0.0, 0.0);
        for (i, &row) in rows.iter().enumerate() {
            for (j, &col) in cols.iter().enumerate() {
                let d = i.abs_diff(j) as f64;
                let w = match weights {
                    KappaWeights::None => f64::from(u8::from(i != j)),
                    KappaWeights::Linear => d,
                    KappaWeights::Quadratic => d * d,
                };
                observed += w * self.cell(i, j) as f64;
                expected += w * row as f64 * col as f64 / total;
            }
        }
        1.0 - observed / expected
    }

    /// Matthews correlation coefficient, multiclass (`matthews_corrcoef`); 0 where it
    /// is undefined, as scikit-learn returns.
    pub fn mcc(&self) -> f64 {
        let (t, p) = (self.support(), self.predicted());
        let n = self.total() as f64;
        let correct = self.diag().iter().sum::<u64>() as f64;
        let dot = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>();
        let cov_ytyp = correct * n - dot(&t, &p);
        let cov_ypyp = n * n - dot(&p, &p);
        let cov_ytyt = n * n - dot(&t, &t);
        if cov_ypyp * cov_ytyt == 0.0 {
            0.0
        } else {
            cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
        }
    }
}
