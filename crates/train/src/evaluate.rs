//! Evaluation: a network's class probabilities on a dataset (with test-time
//! augmentation), accumulated by `cnnlab_metrics::Accumulator`; the per-epoch
//! validation numbers and the final test report come from it, and `cnnlab evaluate`
//! scores its folders with the same [`score`].

use cnnlab_data::{Dataset, Fingerprints, Splits, Variant};
use cnnlab_metrics::{Accumulator, Average, Report, ZeroDivision};
use cnnlab_models::Network;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use crate::batch::{for_each_batch, Normalizer};
use crate::config::Tta;
use crate::error::{Error, Result};
use cnnlab_run::{files, write_predictions, FinalMetrics, RunDir};

/// Probabilities are clamped to this before their log, in every loss we report.
use cnnlab_run::LOG_EPS;

/// Result of one evaluation pass.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// Mean cross-entropy of the probabilities.
    pub loss: f64,
    /// Softmax probabilities, row-major `n_samples x n_classes`, in dataset order.
    pub probabilities: Vec<f32>,
    scores: Accumulator,
}

impl Evaluation {
    pub fn n_samples(&self) -> usize {
        self.scores.confusion_matrix().total() as usize
    }

    pub fn accuracy(&self) -> f64 {
        self.scores.confusion_matrix().accuracy()
    }

    /// Macro-averaged F1 (a class never predicted counts 0, as in scikit-learn).
    pub fn macro_f1(&self) -> f64 {
        self.scores.confusion_matrix().averaged(Average::Macro, 1.0, ZeroDivision::Zero).f_beta
    }

    /// The predicted class of each sample (the argmax of its probabilities).
    pub fn predicted(&self) -> &[usize] {
        self.scores.predictions()
    }

    /// Every metric of `cnnlab metrics`.
    pub fn report(&self) -> Result<Report> {
        Ok(self.scores.finish()?)
    }
}

/// The mean of `-ln max(p_true, LOG_EPS)` over the rows of `probs` (`[n, classes]`).
pub(crate) fn mean_log_loss(probs: &Tensor, ys: &Tensor) -> Result<f64> {
    Ok(f64::try_from(probs.clamp_min(LOG_EPS).log().nll_loss(ys))?)
}

/// All metrics of probabilities `probabilities` (`n x classes`, row-major) against
/// `y_true`: what a run's `metrics.json` and `cnnlab evaluate` report.
pub fn score(y_true: &[usize], probabilities: &[f32], classes: &[String]) -> Result<Report> {
    let mut acc = Accumulator::new(classes.to_vec())?;
    acc.add_scores(y_true, probabilities)?;
    Ok(acc.finish()?)
}

/// Loss and accuracy of `net` on `data`, without gradients and in eval mode.
pub fn evaluate(net: &Network, data: &Dataset, norm: &Normalizer, batch_size: usize) -> Result<Evaluation> {
    evaluate_tta(net, data, norm, batch_size, Tta::None)
}

/// Softmax probabilities of `xs` under test-time augmentation `tta`.
pub(crate) fn tta_probabilities(net: &Network, xs: &Tensor, tta: Tta) -> Tensor {
    let probs = |x: &Tensor| net.forward_t(x, false).softmax(-1, Kind::Float);
    let flip_pair = |x: &Tensor| (probs(x) + probs(&x.flip([3]))) / 2.0;
    match tta {
        Tta::None => probs(xs),
        Tta::Flip => flip_pair(xs),
        Tta::FlipTranslate => {
            // airbench's level 2: shifted one pixel up-left and down-right (reflected border).
            let (h, w) = (xs.size()[2], xs.size()[3]);
            let padded = xs.reflection_pad2d([1, 1, 1, 1]);
            let up_left = padded.narrow(2, 0, h).narrow(3, 0, w);
            let down_right = padded.narrow(2, 2, h).narrow(3, 2, w);
            flip_pair(xs) * 0.5 + (flip_pair(&up_left) + flip_pair(&down_right)) * 0.25
        }
    }
}

/// [`evaluate`] with test-time augmentation (see [`Tta`]).
pub fn evaluate_tta(
    net: &Network,
    data: &Dataset,
    norm: &Normalizer,
    batch_size: usize,
    tta: Tta,
) -> Result<Evaluation> {
    let items: Vec<(usize, Variant)> = (0..data.len()).map(|i| (i, Variant::Original)).collect();
    let mut scores = Accumulator::new(data.classes.clone())?;
    let mut loss_sum = 0.0f64;
    let mut probabilities = Vec::with_capacity(data.len() * data.num_classes());
    tch::no_grad(|| {
        for_each_batch(data, &items, batch_size, 0, None, |_, batch| {
            let xs = norm.to_tensor(&batch.pixels);
            let ys = Tensor::from_slice(&batch.labels).to_device(xs.device());
            let probs = tta_probabilities(net, &xs, tta);
            loss_sum += mean_log_loss(&probs, &ys)? * batch.labels.len() as f64;
            let probs = Vec::<f32>::try_from(probs.to_device(Device::Cpu).flatten(0, -1))?;
            let y_true: Vec<usize> = batch.labels.iter().map(|&l| l as usize).collect();
            scores.add_scores(&y_true, &probs)?;
            probabilities.extend(probs);
            Ok::<(), Error>(())
        })
    })?;
    Ok(Evaluation { loss: loss_sum / data.len() as f64, probabilities, scores })
}

/// An evaluation of the test split from probabilities computed elsewhere (the
/// one-vs-rest ensemble's combined scores).
pub(crate) fn from_probabilities(data: &Dataset, probabilities: Vec<f32>) -> Result<Evaluation> {
    let k = data.num_classes();
    let y_true: Vec<usize> = data.labels.iter().map(|&l| l as usize).collect();
    // The same clamp as [`mean_log_loss`], summed in f64 (cnnlab-run's one definition).
    let loss = cnnlab_run::mean_loss(&probabilities, k, y_true.iter().copied());
    let mut scores = Accumulator::new(data.classes.clone())?;
    scores.add_scores(&y_true, &probabilities)?;
    Ok(Evaluation { loss, probabilities, scores })
}

/// What the final test pass knows beyond the evaluation itself.
pub(crate) struct RunFacts {
    pub(crate) epochs: usize,
    pub(crate) device: Device,
    pub(crate) trainable_params: i64,
    pub(crate) train_seconds: f64,
    pub(crate) images_seen: usize,
    pub(crate) tta: Tta,
}

/// Writes the test results: `classification_report.txt`, `predictions.csv`, `metrics.json`.
pub(crate) fn write_test_results(
    run: &RunDir,
    splits: &Splits,
    eval: &Evaluation,
    facts: RunFacts,
) -> Result<FinalMetrics> {
    let test = &splits.test;
    let report = eval.report()?;
    run.write_bytes(files::REPORT, report.text().as_bytes())?;
    let y_true: Vec<usize> = test.labels.iter().map(|&l| l as usize).collect();
    let y_pred = eval.predicted();
    let names = splits.files.as_ref().map(|f| &f.test).filter(|f| f.len() == test.len());
    let k = test.num_classes();
    let ids: Vec<String> = match names {
        Some(f) => f.iter().map(|p| p.display().to_string()).collect(),
        None => (0..test.len()).map(|i| i.to_string()).collect(),
    };
    let rows =
        ids.into_iter().enumerate().map(|(i, id)| (id, y_true[i], y_pred[i], &eval.probabilities[i * k..(i + 1) * k]));
    let id_header = if names.is_some() { "file" } else { "index" };
    // (A test file that went away during training costs the column, not the run.)
    let fingerprints = Fingerprints::of_split(test, names.map(Vec::as_slice))
        .inspect_err(|e| tracing::warn!("no test fingerprints in {}: {e}", files::PREDICTIONS))
        .ok();
    write_predictions(
        &run.file(files::PREDICTIONS),
        id_header,
        &test.classes,
        rows,
        fingerprints.as_ref().map(Fingerprints::as_column),
    )?;
    let metrics = FinalMetrics {
        report,
        loss: eval.loss,
        n_samples: eval.n_samples(),
        epochs: facts.epochs,
        device: format!("{:?}", facts.device),
        trainable_params: facts.trainable_params,
        train_seconds: facts.train_seconds,
        images_per_sec: facts.images_seen as f64 / facts.train_seconds.max(1e-9),
        tta: facts.tta,
        peak_rss_mb: cnnlab_run::peak_rss_mb(),
    };
    run.write_json(files::METRICS, &metrics)?;
    Ok(metrics)
}
