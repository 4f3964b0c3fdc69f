//! Everything at once: the streaming [`Accumulator`] and the [`Report`] it produces,
//! as JSON (serde) and as `classification_report` text.

#[cfg(feature = "serde")]
use serde::{Deserialize, Deserializer, Serialize};

use crate::confusion::{Average, ConfusionMatrix, ZeroDivision};
use crate::error::{Error, Result};
use crate::scores::{
    are_probabilities, argmax_rows, check_scores, log_loss, roc_auc_ovr_lenient, roc_auc_ovr_per_class,
};

/// One class's row of the report.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ClassRow {
    /// The class name.
    pub class: String,
    /// Precision (0 where nothing was predicted as the class).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub precision: f64,
    /// Recall (0 where the class has no sample).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub recall: f64,
    /// F1.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub f1: f64,
    /// True samples of the class.
    pub support: u64,
    /// One-vs-rest ROC AUC; `None` without scores or when the class has no positive
    /// or no negative sample.
    pub roc_auc: Option<f64>,
}

/// All metrics of one evaluation, over the classes `0..n_classes` (scikit-learn's
/// `labels=range(n_classes)`, zero division 0). Score-dependent values are `None`
/// (`null` in JSON) when no scores were given; ROC AUC averages are the lenient ones
/// (over the classes where it is defined); log loss is `None` unless the scores are
/// probabilities. Serialized with serde, its keys are the field names.
///
/// ```
/// let r = cnnlab_metrics::Report::from_labels(&[0, 1, 1], &[0, 1, 0], &["cat", "dog"]).unwrap();
/// assert!((r.f1_macro - 2.0 / 3.0).abs() < 1e-12);
/// println!("{}", r.text()); // scikit-learn's classification_report layout
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Report {
    /// Share of correct predictions (`accuracy_score`).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub accuracy: f64,
    /// Mean recall over the classes present in y_true (`balanced_accuracy_score`).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub balanced_accuracy: f64,
    /// Unweighted mean of per-class precision.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub precision_macro: f64,
    /// Unweighted mean of per-class recall.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub recall_macro: f64,
    /// Unweighted mean of per-class F1.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub f1_macro: f64,
    /// Precision of all samples pooled (equals accuracy).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub precision_micro: f64,
    /// Recall of all samples pooled (equals accuracy).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub recall_micro: f64,
    /// F1 of all samples pooled (equals accuracy).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub f1_micro: f64,
    /// Per-class precision weighted by support.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub precision_weighted: f64,
    /// Per-class recall weighted by support.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub recall_weighted: f64,
    /// Per-class F1 weighted by support.
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub f1_weighted: f64,
    /// Matthews correlation coefficient (`matthews_corrcoef`).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "f64_or_nan"))]
    pub mcc: f64,
    /// One-vs-rest ROC AUC, mean over the classes where it is defined.
    pub roc_auc_ovr_macro: Option<f64>,
    /// One-vs-rest ROC AUC weighted by support, over the classes where it is defined.
    pub roc_auc_ovr_weighted: Option<f64>,
    /// Mean negative log-likelihood (`log_loss`), when the scores are probabilities.
    pub log_loss: Option<f64>,
    /// Rows true classes, columns predicted (`confusion_matrix`).
    pub confusion_matrix: Vec<Vec<u64>>,
    /// One row per class, in class order.
    pub per_class: Vec<ClassRow>,
}

impl Report {
    /// From labels only (no ROC AUC, no log loss).
    pub fn from_labels<S: AsRef<str>>(y_true: &[usize], y_pred: &[usize], class_names: &[S]) -> Result<Self> {
        Self::new::<f64, S>(y_true, y_pred, None, class_names)
    }

    /// From labels and, optionally, an `n x n_classes` score matrix (probabilities or
    /// any monotone confidence: log loss needs probabilities and is `None` otherwise).
    pub fn new<T: Copy + Into<f64>, S: AsRef<str>>(
        y_true: &[usize],
        y_pred: &[usize],
        scores: Option<&[T]>,
        class_names: &[S],
    ) -> Result<Self> {
        let n_classes = class_names.len();
        let cm = ConfusionMatrix::from_labels(y_true, y_pred, n_classes)?;
        let (per_auc, auc_macro, auc_weighted, loss) = match scores {
            Some(s) => {
                let s = check_scores(y_true, s, n_classes)?;
                let per = roc_auc_ovr_per_class(y_true, &s, n_classes)?;
                let (m, w) = roc_auc_ovr_lenient(y_true, &per, n_classes)?;
                let loss =
                    are_probabilities(y_true, &s, n_classes).then(|| log_loss(y_true, &s, n_classes)).transpose()?;
                (per, m, w, loss)
            }
            None => (vec![None; n_classes], None, None, None),
        };
        let zd = ZeroDivision::Zero;
        let pc = cm.per_class(1.0, zd);
        let m = cm.averaged(Average::Macro, 1.0, zd);
        let i = cm.averaged(Average::Micro, 1.0, zd);
        let w = cm.averaged(Average::Weighted, 1.0, zd);
        let per_class = (0..n_classes)
            .map(|k| ClassRow {
                class: class_names[k].as_ref().to_owned(),
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
            precision_macro: m.precision,
            recall_macro: m.recall,
            f1_macro: m.f_beta,
            precision_micro: i.precision,
            recall_micro: i.recall,
            f1_micro: i.f_beta,
            precision_weighted: w.precision,
            recall_weighted: w.recall,
            f1_weighted: w.f_beta,
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
        // Characters, as Python's len() counts them (and as `{:>width$}` pads).
        let width = self.per_class.iter().map(|r| r.class.chars().count()).chain([12]).max().unwrap_or(12);
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

/// One entry of [`Report::to_dict`]: a class's (or an average's) scores, or accuracy.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(Serialize), serde(untagged))]
pub enum DictEntry {
    /// Precision, recall, F1 and support.
    Scores {
        /// Precision.
        precision: f64,
        /// Recall.
        recall: f64,
        /// F1, under scikit-learn's key `f1-score`.
        #[cfg_attr(feature = "serde", serde(rename = "f1-score"))]
        f1_score: f64,
        /// Support, a float as scikit-learn writes it.
        support: f64,
    },
    /// Accuracy.
    Value(f64),
}

/// [`Report::to_dict`]'s result: entries in scikit-learn's order; it serializes as
/// one JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDict(pub Vec<(String, DictEntry)>);

#[cfg(feature = "serde")]
impl Serialize for ReportDict {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Report {
    /// The per-class report as `classification_report(output_dict=True)` lays it out:
    /// one entry per class name, then `accuracy`, `macro avg`, `weighted avg`.
    pub fn to_dict(&self) -> ReportDict {
        let total = self.per_class.iter().map(|r| r.support).sum::<u64>() as f64;
        let scores = |precision, recall, f1_score, support| DictEntry::Scores { precision, recall, f1_score, support };
        let mut out: Vec<(String, DictEntry)> = self
            .per_class
            .iter()
            .map(|r| (r.class.clone(), scores(r.precision, r.recall, r.f1, r.support as f64)))
            .collect();
        out.push(("accuracy".into(), DictEntry::Value(self.accuracy)));
        out.push(("macro avg".into(), scores(self.precision_macro, self.recall_macro, self.f1_macro, total)));
        out.push((
            "weighted avg".into(),
            scores(self.precision_weighted, self.recall_weighted, self.f1_weighted, total),
        ));
        ReportDict(out)
    }
}

/// JSON has no NaN: serde_json writes it as `null`, and this reads `null` back as NaN,
/// so every report that was written can be read.
#[cfg(feature = "serde")]
fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Streaming evaluation, like torchmetrics' `update` / `compute` / `reset`: feed
/// batches of labels (and scores), get a [`Report`] at the end; [`Accumulator::merge`]
/// joins the accumulators of separate workers. Batches without scores keep memory
/// constant (the confusion matrix, `n_classes^2` counts); scores are kept for ROC AUC
/// and log loss, which need every sample. Once a batch without scores was added, the
/// report has no score metrics (a ROC AUC over part of the samples would mislead), and
/// [`Accumulator::has_scores`] says so.
///
/// ```
/// use cnnlab_metrics::Accumulator;
/// let mut a = Accumulator::new(["cat", "dog"]).unwrap();
/// a.update(&[0, 1], &[0, 0]).unwrap();
/// let mut b = Accumulator::new(["cat", "dog"]).unwrap();
/// b.update_scored(&[1], &[1], &[0.2f32, 0.8]).unwrap();
/// a.merge(&b).unwrap();
/// assert_eq!(a.compute().unwrap().accuracy, 2.0 / 3.0);
/// ```
#[derive(Debug, Clone)]
pub struct Accumulator {
    class_names: Vec<String>,
    y_true: Vec<usize>,
    y_pred: Vec<usize>,
    scores: Vec<f64>,
    /// Whether every sample so far came with scores.
    all_scored: bool,
    cm: ConfusionMatrix,
}

impl Accumulator {
    /// An empty accumulator for these classes.
    pub fn new<S: AsRef<str>>(class_names: impl IntoIterator<Item = S>) -> Result<Self> {
        let class_names: Vec<String> = class_names.into_iter().map(|s| s.as_ref().to_owned()).collect();
        let cm = ConfusionMatrix::new(class_names.len())?;
        Ok(Self { class_names, y_true: vec![], y_pred: vec![], scores: vec![], all_scored: true, cm })
    }

    /// Adds a batch of true and predicted labels; the report will then have no score
    /// metrics. Labels are checked first: an error adds nothing.
    pub fn update(&mut self, y_true: &[usize], y_pred: &[usize]) -> Result<()> {
        self.add(y_true, y_pred, None)
    }

    /// Adds a batch of true and predicted labels with their `n x n_classes` scores.
    /// Everything is checked first: an error adds nothing.
    pub fn update_scored<T: Copy + Into<f64>>(
        &mut self,
        y_true: &[usize],
        y_pred: &[usize],
        scores: &[T],
    ) -> Result<()> {
        let scores = check_scores(y_true, scores, self.class_names.len())?;
        self.add(y_true, y_pred, Some(scores))
    }

    fn add(&mut self, y_true: &[usize], y_pred: &[usize], scores: Option<Vec<f64>>) -> Result<()> {
        self.cm.add(y_true, y_pred)?;
        match scores {
            Some(s) if self.all_scored => {
                self.y_true.extend_from_slice(y_true);
                self.y_pred.extend_from_slice(y_pred);
                self.scores.extend(s);
            }
            _ => self.drop_scores(),
        }
        Ok(())
    }

    /// Adds a batch of scores; the prediction is each row's argmax.
    pub fn add_scores<T: Copy + Into<f64>>(&mut self, y_true: &[usize], scores: &[T]) -> Result<()> {
        let n = self.class_names.len();
        let s = check_scores(y_true, scores, n)?;
        let pred = argmax_rows(&s, n);
        self.add(y_true, &pred, Some(s))
    }

    fn drop_scores(&mut self) {
        self.all_scored = false;
        self.scores = Vec::new();
        self.y_true = Vec::new();
        self.y_pred = Vec::new();
    }

    /// Whether every sample added so far came with scores (so the report has ROC AUC).
    pub fn has_scores(&self) -> bool {
        self.all_scored && self.cm.total() > 0
    }

    /// Adds everything `other` has seen (its samples after this one's).
    pub fn merge(&mut self, other: &Accumulator) -> Result<()> {
        if other.class_names.len() != self.class_names.len() {
            return Err(Error::ClassCountMismatch { left: self.class_names.len(), right: other.class_names.len() });
        }
        self.cm.merge(&other.cm)?;
        if self.all_scored && other.all_scored {
            self.y_true.extend_from_slice(&other.y_true);
            self.y_pred.extend_from_slice(&other.y_pred);
            self.scores.extend_from_slice(&other.scores);
        } else {
            self.drop_scores();
        }
        Ok(())
    }

    /// Forgets every sample (the class names stay).
    pub fn reset(&mut self) {
        self.cm.reset();
        self.y_true.clear();
        self.y_pred.clear();
        self.scores.clear();
        self.all_scored = true;
    }

    /// The predicted class of every sample added with scores, in the order added
    /// (empty once a batch came without scores).
    pub fn predictions(&self) -> &[usize] {
        &self.y_pred
    }

    /// The confusion matrix of every sample added.
    pub fn confusion_matrix(&self) -> &ConfusionMatrix {
        &self.cm
    }

    /// The report of every sample added (torchmetrics' `compute`).
    pub fn compute(&self) -> Result<Report> {
        self.finish()
    }

    /// The report of every sample added.
    pub fn finish(&self) -> Result<Report> {
        if self.cm.total() == 0 {
            return Err(Error::Empty);
        }
        if self.all_scored {
            return Report::new(&self.y_true, &self.y_pred, Some(&self.scores[..]), &self.class_names);
        }
        // Labels only: rebuild label pairs from the matrix (order does not matter).
        let (mut t, mut p) = (Vec::new(), Vec::new());
        for i in 0..self.cm.n_classes() {
            for j in 0..self.cm.n_classes() {
                let c = self.cm.cell(i, j) as usize;
                t.extend(std::iter::repeat_n(i, c));
                p.extend(std::iter::repeat_n(j, c));
            }
        }
        Report::from_labels(&t, &p, &self.class_names)
    }
}
