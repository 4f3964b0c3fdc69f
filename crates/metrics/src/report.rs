//! Everything at once: the streaming [`Accumulator`] and the [`Report`] it produces,
//! as JSON (serde) and as `classification_report` text.

use serde::{Deserialize, Deserializer, Serialize};

use crate::confusion::{Average, ConfusionMatrix, ZeroDivision};
use crate::error::{Error, Result};
use crate::scores::{argmax_rows, check_scores, log_loss, roc_auc_ovr_lenient, roc_auc_ovr_per_class};

/// One class's row of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    pub class: String,
    #[serde(deserialize_with = "f64_or_nan")]
    pub precision: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub recall: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub f1: f64,
    pub support: u64,
    /// One-vs-rest ROC AUC; `None` without scores or when the class has no positive
    /// or no negative sample.
    pub roc_auc: Option<f64>,
}

/// All metrics of one evaluation. Its JSON keys are those of `cnnlab metrics --json`
/// and of a run's `metrics.json`. Score-dependent values are `None` (`null`) when no
/// scores were given; ROC AUC averages are the lenient ones (over defined classes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(deserialize_with = "f64_or_nan")]
    pub accuracy: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub balanced_accuracy: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub precision_macro: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub recall_macro: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub f1_macro: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub precision_micro: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub recall_micro: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub f1_micro: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub precision_weighted: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub recall_weighted: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub f1_weighted: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub mcc: f64,
    pub roc_auc_ovr_macro: Option<f64>,
    pub roc_auc_ovr_weighted: Option<f64>,
    pub log_loss: Option<f64>,
    pub confusion_matrix: Vec<Vec<u64>>,
    pub per_class: Vec<ClassRow>,
}

impl Report {
    /// From labels and, optionally, an `n x n_classes` score matrix.
    pub fn new<T: Copy + Into<f64>>(
        y_true: &[usize],
        y_pred: &[usize],
        scores: Option<&[T]>,
        class_names: &[String],
    ) -> Result<Self> {
        let n_classes = class_names.len();
        let cm = ConfusionMatrix::from_labels(y_true, y_pred, n_classes)?;
        let (per_auc, auc_macro, auc_weighted, loss) = match scores {
            Some(s) => {
                let per = roc_auc_ovr_per_class(y_true, s, n_classes)?;
                let (m, w) = roc_auc_ovr_lenient(y_true, &per, n_classes);
                (per, m, w, Some(log_loss(y_true, s, n_classes)?))
            }
            None => (vec![None; n_classes], None, None, None),
        };
        let zd = ZeroDivision::Zero;
        let pc = cm.per_class(1.0, zd);
        let (pm, rm, fm) = cm.averaged(Average::Macro, 1.0, zd);
        let (pi, ri, fi) = cm.averaged(Average::Micro, 1.0, zd);
        let (pw, rw, fw) = cm.averaged(Average::Weighted, 1.0, zd);
        let per_class = (0..n_classes)
            .map(|k| ClassRow {
                class: class_names[k].clone(),
                precision: pc.precision[k],
                recall: pc.recall[k],
                f1: pc.f_beta[k],
                support: pc.support[k],
                roc_auc: per_auc[k],
            })
            .collect();
        Ok(Report {
            accuracy: cm.accuracy(),
            balanced_accuracy: cm.balanced_accuracy(),
            precision_macro: pm,
            recall_macro: rm,
            f1_macro: fm,
            precision_micro: pi,
            recall_micro: ri,
            f1_micro: fi,
            precision_weighted: pw,
            recall_weighted: rw,
            f1_weighted: fw,
            mcc: cm.mcc(),
            roc_auc_ovr_macro: auc_macro,
            roc_auc_ovr_weighted: auc_weighted,
            log_loss: loss,
            confusion_matrix: cm.rows(),
            per_class,
        })
    }

    /// Text laid out as `sklearn.metrics.classification_report(digits=2)`.
    pub fn text(&self) -> String {
        let width = self.per_class.iter().map(|r| r.class.len()).chain([12]).max().unwrap_or(12);
        let total: u64 = self.per_class.iter().map(|r| r.support).sum();
        let mut out =
            format!("{:>width$}  {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        let row =
            |name: &str, p: f64, r: f64, f: f64, s: u64| format!("{name:>width$}  {p:>9.2} {r:>9.2} {f:>9.2} {s:>9}\n");
        for r in &self.per_class {
            out += &row(&r.class, r.precision, r.recall, r.f1, r.support);
        }
        out += "\n";
        out += &format!("{:>width$}  {:>9} {:>9} {:>9.2} {:>9}\n", "accuracy", "", "", self.accuracy, total);
        out += &row("macro avg", self.precision_macro, self.recall_macro, self.f1_macro, total);
        out += &row("weighted avg", self.precision_weighted, self.recall_weighted, self.f1_weighted, total);
        out
    }
}

/// JSON has no NaN: serde_json writes it as `null`, and this reads `null` back as NaN,
/// so every report that was written can be read.
fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Streaming evaluation: feed batches of labels and scores, get a [`Report`] at the
/// end. Without scores it keeps only the confusion matrix (O(n_classes^2)); with
/// scores it also keeps them for ROC AUC and log loss.
#[derive(Debug, Clone)]
pub struct Accumulator {
    class_names: Vec<String>,
    y_true: Vec<usize>,
    y_pred: Vec<usize>,
    scores: Vec<f64>,
    cm: ConfusionMatrix,
}

impl Accumulator {
    pub fn new(class_names: Vec<String>) -> Result<Self> {
        let cm = ConfusionMatrix::new(class_names.len())?;
        Ok(Self { class_names, y_true: vec![], y_pred: vec![], scores: vec![], cm })
    }

    /// Adds predicted labels only; scores of earlier batches are then dropped, since
    /// a ROC AUC over part of the samples would mislead.
    pub fn add_labels(&mut self, y_true: &[usize], y_pred: &[usize]) -> Result<()> {
        self.cm.add(y_true, y_pred)?;
        self.scores.clear();
        self.y_true.clear();
        self.y_pred.clear();
        Ok(())
    }

    /// Adds a batch of scores; the prediction is each row's argmax.
    pub fn add_scores<T: Copy + Into<f64>>(&mut self, y_true: &[usize], scores: &[T]) -> Result<()> {
        let n = self.class_names.len();
        let s = check_scores(y_true, scores, n)?;
        let pred = argmax_rows(&s, n);
        self.cm.add(y_true, &pred)?;
        self.y_true.extend_from_slice(y_true);
        self.y_pred.extend(pred);
        self.scores.extend(s);
        Ok(())
    }

    /// The predicted class of every sample added with scores, in the order added
    /// (empty after [`Accumulator::add_labels`]).
    pub fn predictions(&self) -> &[usize] {
        &self.y_pred
    }

    pub fn confusion_matrix(&self) -> &ConfusionMatrix {
        &self.cm
    }

    pub fn finish(&self) -> Result<Report> {
        if self.cm.total() == 0 {
            return Err(Error::Empty);
        }
        let keeps_scores = self.y_true.len() as u64 == self.cm.total();
        if keeps_scores {
            return Report::new(&self.y_true, &self.y_pred, Some(&self.scores[..]), &self.class_names);
        }
        // Labels only: rebuild label pairs from the matrix (order does not matter).
        let (mut t, mut p) = (Vec::new(), Vec::new());
        for i in 0..self.cm.n_classes() {
            for j in 0..self.cm.n_classes() {
                let c = self.cm.get(i, j) as usize;
                t.extend(std::iter::repeat_n(i, c));
                p.extend(std::iter::repeat_n(j, c));
            }
        }
        Report::new::<f64>(&t, &p, None, &self.class_names)
    }
}
