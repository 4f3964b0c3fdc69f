//! The confusion matrix and every metric that is a function of it.

use serde::Serialize;

use crate::error::{Error, Result};

/// What a ratio with a zero denominator becomes, as scikit-learn's `zero_division`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ZeroDivision {
    /// scikit-learn's default ("warn" behaves as 0).
    #[default]
    Zero,
    One,
    Nan,
}

impl ZeroDivision {
    fn value(self) -> f64 {
        match self {
            ZeroDivision::Zero => 0.0,
            ZeroDivision::One => 1.0,
            ZeroDivision::Nan => f64::NAN,
        }
    }

    fn divide(self, num: f64, den: f64) -> f64 {
        if den == 0.0 {
            self.value()
        } else {
            num / den
        }
    }
}

/// How per-class values are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    Macro,
    Micro,
    Weighted,
}

/// Per-class precision, recall, F-beta and support.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerClass {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f_beta: Vec<f64>,
    pub support: Vec<u64>,
}

/// Rows are true classes, columns predicted classes (scikit-learn's layout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

    pub fn from_labels(y_true: &[usize], y_pred: &[usize], n_classes: usize) -> Result<Self> {
        check_pair(y_true, y_pred, n_classes)?;
        let mut cm = Self::new(n_classes)?;
        for (&t, &p) in y_true.iter().zip(y_pred) {
            cm.counts[t * n_classes + p] += 1;
        }
        Ok(cm)
    }

    /// Adds a batch; labels are checked first, so an error adds nothing.
    pub fn add(&mut self, y_true: &[usize], y_pred: &[usize]) -> Result<()> {
        let other = Self::from_labels(y_true, y_pred, self.n_classes)?;
        self.counts.iter_mut().zip(other.counts).for_each(|(a, b)| *a += b);
        Ok(())
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Samples of true class `t` predicted as `p`.
    pub fn get(&self, t: usize, p: usize) -> u64 {
        self.counts[t * self.n_classes + p]
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts.chunks(self.n_classes).map(<[u64]>::to_vec).collect()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn diag(&self) -> Vec<u64> {
        (0..self.n_classes).map(|k| self.get(k, k)).collect()
    }

    /// True count of each class (row sums).
    pub fn support(&self) -> Vec<u64> {
        (0..self.n_classes).map(|t| (0..self.n_classes).map(|p| self.get(t, p)).sum()).collect()
    }

    /// Predicted count of each class (column sums).
    pub fn predicted(&self) -> Vec<u64> {
        (0..self.n_classes).map(|p| (0..self.n_classes).map(|t| self.get(t, p)).sum()).collect()
    }

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
        let b2 = beta * beta;
        let mut out = PerClass { precision: vec![], recall: vec![], f_beta: vec![], support: support.clone() };
        for k in 0..self.n_classes {
            let (tp, fp, fn_) = (diag[k] as f64, (predicted[k] - diag[k]) as f64, (support[k] - diag[k]) as f64);
            out.precision.push(zero_division.divide(tp, tp + fp));
            out.recall.push(zero_division.divide(tp, tp + fn_));
            out.f_beta.push(zero_division.divide((1.0 + b2) * tp, (1.0 + b2) * tp + b2 * fn_ + fp));
        }
        out
    }

    /// Averaged (precision, recall, F-beta), as `precision_recall_fscore_support(average=...)`.
    pub fn averaged(&self, average: Average, beta: f64, zero_division: ZeroDivision) -> (f64, f64, f64) {
        match average {
            Average::Micro => {
                let tp = self.diag().iter().sum::<u64>() as f64;
                let total = self.total() as f64;
                // Over all classes, false positives and false negatives both count
                // every off-diagonal sample.
                let off = total - tp;
                let b2 = beta * beta;
                (
                    zero_division.divide(tp, tp + off),
                    zero_division.divide(tp, tp + off),
                    zero_division.divide((1.0 + b2) * tp, (1.0 + b2) * tp + b2 * off + off),
                )
            }
            Average::Macro => {
                let pc = self.per_class(beta, zero_division);
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                (mean(&pc.precision), mean(&pc.recall), mean(&pc.f_beta))
            }
            Average::Weighted => {
                let pc = self.per_class(beta, zero_division);
                let total = pc.support.iter().sum::<u64>() as f64;
                if total == 0.0 {
                    let z = zero_division.value();
                    return (z, z, z);
                }
                let wmean = |v: &[f64]| v.iter().zip(&pc.support).map(|(x, &s)| x * s as f64).sum::<f64>() / total;
                (wmean(&pc.precision), wmean(&pc.recall), wmean(&pc.f_beta))
            }
        }
    }

    /// Matthews correlation coefficient, multiclass (`matthews_corrcoef`).
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
