//! The one error type of this crate.

/// Bad input to a metric: a typed error, never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two inputs that pair up sample by sample differ in length.
    #[error("y_true has {y_true} samples but the other input has {other}")]
    LengthMismatch {
        /// Samples in `y_true`.
        y_true: usize,
        /// Samples in the other input.
        other: usize,
    },
    /// No sample at all.
    #[error("no samples")]
    Empty,
    /// Zero classes (or an empty `labels` list).
    #[error("n_classes must be at least 1")]
    NoClasses,
    /// A label not below the class count.
    #[error("label {label} at sample {index} is not below n_classes = {n_classes}")]
    LabelOutOfRange {
        /// The label.
        label: usize,
        /// Its sample.
        index: usize,
        /// The class count.
        n_classes: usize,
    },
    /// A NaN or infinite score.
    #[error("score {value} at sample {index} is NaN or infinite")]
    NonFiniteScore {
        /// The score.
        value: f64,
        /// Its sample (row).
        index: usize,
    },
    /// A score matrix of the wrong size.
    #[error("scores have {len} values, expected {n_samples} samples x {n_classes} classes")]
    ScoreShape {
        /// Values given.
        len: usize,
        /// Samples in `y_true`.
        n_samples: usize,
        /// The class count.
        n_classes: usize,
    },
    /// A probability below 0 or above 1 where probabilities are required (log loss,
    /// Brier score), as scikit-learn's "y_prob contains values greater than 1".
    #[error("y_prob row {index} holds {value}, outside [0, 1]: pass probabilities (apply softmax to logits first)")]
    NotProbability {
        /// The value.
        value: f64,
        /// Its sample (row).
        index: usize,
    },
    /// A row of probabilities that does not sum to 1 (within the square root of f32's
    /// epsilon, so f32 softmax outputs pass).
    #[error("y_prob row {index} sums to {sum}, not 1: pass probabilities (apply softmax to logits first)")]
    RowSum {
        /// The row's sum.
        sum: f64,
        /// The row.
        index: usize,
    },
    /// A NaN or infinite sample weight.
    #[error("sample_weight {value} at sample {index} is NaN or infinite")]
    BadWeight {
        /// The weight.
        value: f64,
        /// Its sample.
        index: usize,
    },
    /// Sample weights that are all zero (scikit-learn: "Sample weights must contain at
    /// least one non-zero number"), or that sum to zero where they average.
    #[error("sample_weight is all zero or sums to zero: at least one sample must count")]
    ZeroWeights,
    /// An F-beta beta outside `[0, inf]`.
    #[error("beta = {0} must be in [0, inf]")]
    BadBeta(f64),
    /// A significance level outside (0, 1).
    #[error("alpha = {0} must be strictly between 0 and 1")]
    BadAlpha(f64),
    /// An example index at or above the number of examples.
    #[error("example {index} is not below the {len} examples")]
    IndexOutOfRange {
        /// The index given.
        index: usize,
        /// The number of examples.
        len: usize,
    },
    /// A class index at or above the class count.
    #[error("class {class} is not below n_classes = {n_classes}")]
    ClassOutOfRange {
        /// The index given.
        class: usize,
        /// The class count.
        n_classes: usize,
    },
    /// `Average::Binary` on labels of more than two classes (scikit-learn's "Target
    /// is multiclass but average='binary'").
    #[error("average Binary needs at most two classes, the labels hold {classes:?}: use Macro, Micro or Weighted")]
    NotBinary {
        /// The classes present.
        classes: Vec<usize>,
    },
    /// A `pos_label` that is not one of the two classes present.
    #[error("pos_label {pos_label} is not one of the classes present, {present:?}")]
    PosLabel {
        /// The positive class asked for.
        pos_label: usize,
        /// The two classes present.
        present: Vec<usize>,
    },
    /// Two matrices or accumulators of different class counts cannot be merged.
    #[error("cannot merge {right} classes into {left}")]
    ClassCountMismatch {
        /// Classes of the receiving side.
        left: usize,
        /// Classes of the merged side.
        right: usize,
    },
    /// A top-k with k outside 1..=n_classes.
    #[error("k = {k} must be between 1 and n_classes = {n_classes}")]
    BadK {
        /// The k asked for.
        k: usize,
        /// The class count.
        n_classes: usize,
    },
    /// A confidence level outside (0, 1).
    #[error("confidence level {0} must be strictly between 0 and 1")]
    Confidence(f64),
    /// Too few bootstrap resamples for an interval and a p-value at the level asked.
    #[error("{resamples} resamples are too few for a {confidence} interval and test: at least {minimum} are needed")]
    TooFewResamples {
        /// The resamples asked for.
        resamples: usize,
        /// The confidence level asked for.
        confidence: f64,
        /// [`crate::stats::Bootstrap::minimum_resamples`] of that level.
        minimum: usize,
    },
    /// A paired comparison of runs whose true labels differ (not the same test set).
    #[error("the two runs' true labels differ first at sample {index}: not the same test set")]
    TruthMismatch {
        /// The first sample whose true label differs.
        index: usize,
    },
    /// More successes than trials.
    #[error("{successes} successes out of {n} trials")]
    Count {
        /// Successes.
        successes: u64,
        /// Trials.
        n: u64,
    },
    /// Too few values for a statistic (a sample variance needs two).
    #[error("needs at least {need} values, got {got}")]
    TooFew {
        /// Values needed.
        need: usize,
        /// Values given.
        got: usize,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
