//! `[train] ensemble = true`: an experiment trained once per seed (`seeds`) is one
//! model whose prediction is the mean of its seeds' class probabilities (a deep
//! ensemble, as Kaggle practice averages fold models).
//!
//! The run folder holds the seeds' runs (`seed-<k>/`) and, beside them, the ensemble's
//! own test results under the same names as a single run's (`predictions.csv`,
//! `metrics.json`, `classification_report.txt`, `most_confused.csv`,
//! `plots/confusion.png`) with its `config.toml`, `classes.json` and `shape.json`, so
//! `cnnlab compare`, `report`, `predict` and `evaluate` take the folder as one model.
//! Its training time, parameter count and images seen are the seeds' sums.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cnnlab_cli::compare::{same_test_set, seed_dir_name};
use cnnlab_cli::metrics_cmd;
use cnnlab_data::ImageShape;
use cnnlab_train::{files, FinalMetrics, Predictor, RunDir, Tta, Weights};

use cnnlab_cli::experiment::Experiment;

/// The run folders of `exp`'s members inside `dir`: each seed's for an ensemble, else
/// `dir` itself.
pub(crate) fn members(dir: &Path, exp: &Experiment) -> Vec<PathBuf> {
    if exp.train.ensemble {
        exp.train.seeds.iter().map(|&k| dir.join(seed_dir_name(k))).collect()
    } else {
        vec![dir.to_path_buf()]
    }
}

/// A run's networks for prediction: its own, or an ensemble's seeds', whose class
/// probabilities are averaged.
pub(crate) struct RunModel(Vec<Predictor>);

impl RunModel {
    pub(crate) fn load(
        dir: &Path,
        exp: &Experiment,
        shape: ImageShape,
        classes: &[String],
        weights: Weights,
    ) -> Result<Self> {
        let nets = members(dir, exp)
            .iter()
            .map(|m| Predictor::load(m, &exp.model, shape, classes.to_vec(), weights))
            .collect::<cnnlab_train::Result<Vec<_>>>()?;
        Ok(RunModel(nets))
    }

    /// The loaded run(s): one, or a seed ensemble's members.
    pub(crate) fn predictors(&self) -> &[Predictor] {
        &self.0
    }

    /// Class probabilities of `n` HWC images, row-major `n x classes`, under `tta`.
    pub(crate) fn predict_tta(&self, pixels: &[u8], tta: Tta) -> Result<Vec<f32>> {
        let (first, rest) = self.0.split_first().expect("a run has a network");
        let mut mean = first.predict_tta(pixels, tta)?;
        for net in rest {
            for (m, p) in mean.iter_mut().zip(net.predict_tta(pixels, tta)?) {
                *m += p;
            }
        }
        let n = self.0.len() as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        Ok(mean)
    }
}

/// Writes the ensemble's test results into `dir` from its finished seeds' runs: their
/// test probabilities averaged (each with the run's own `train.tta`).
pub(crate) fn write_results(dir: &Path, exp: &Experiment) -> Result<FinalMetrics> {
    let run = RunDir::new(dir);
    let mut seeds = Vec::new();
    for member in members(dir, exp) {
        let file = member.join(files::PREDICTIONS);
        let metrics = RunDir::new(&member)
            .read_metrics()
            .with_context(|| format!("{}: the seed's run is not finished", member.display()))?;
        seeds.push((file.clone(), metrics_cmd::read(&file)?, metrics));
    }
    let (first_file, first, _) = &seeds[0];
    for (file, p, _) in &seeds[1..] {
        same_test_set(first_file, first, file, p)
            .context("an ensemble's seeds must share the test split (data.seed)")?;
    }
    let k = first.classes.len();
    let mut mean = vec![0.0f64; first.y_true.len() * k];
    for (file, p, _) in &seeds {
        let scores =
            p.scores.as_ref().with_context(|| format!("{}: no p_<class> columns to average", file.display()))?;
        mean.iter_mut().zip(scores).for_each(|(m, s)| *m += s);
    }
    let probs: Vec<f32> = mean.iter().map(|m| (m / seeds.len() as f64) as f32).collect();
    let y_pred = cnnlab_metrics::argmax_rows(&probs, k);
    let report = cnnlab_train::score(&first.y_true, &probs, &first.classes)?;

    let member = RunDir::new(first_file.parent().unwrap_or(Path::new(".")));
    let text = toml::to_string(exp).context("serializing the ensemble's config")?;
    run.write_bytes(files::CONFIG, text.as_bytes())?;
    run.write_json(files::CLASSES, &member.read_classes()?)?;
    run.write_json(files::SHAPE, &member.read_shape()?)?;
    if member.has(files::SPLIT) {
        run.write_bytes(files::SPLIT, &std::fs::read(member.file(files::SPLIT))?)?;
    }
    run.write_bytes(files::REPORT, report.text().as_bytes())?;
    let header = csv::Reader::from_path(first_file).and_then(|mut r| r.headers().cloned());
    let header = header.with_context(|| format!("reading {}", first_file.display()))?;
    let id_header = header.get(0).unwrap_or("file");
    let rows = first
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), first.y_true[i], y_pred[i], &probs[i * k..(i + 1) * k]));
    let fingerprints = first.fingerprints.as_ref().map(|f| (f.column.as_str(), f.values.as_slice()));
    cnnlab_train::write_predictions(&run.file(files::PREDICTIONS), id_header, &first.classes, rows, fingerprints)?;
    let title = format!("confusion matrix (test), ensemble of {} seeds", seeds.len());
    crate::commands::run_outputs::write_confusion(&run, &title, &first.classes, &report.confusion_matrix)?;

    let each: Vec<&FinalMetrics> = seeds.iter().map(|(_, _, m)| m).collect();
    let train_seconds: f64 = each.iter().map(|m| m.train_seconds).sum();
    let images_seen: f64 = each.iter().map(|m| m.images_per_sec * m.train_seconds).sum();
    // The loss of a single run's metrics.json (cnnlab-run's one definition).
    let loss = cnnlab_run::mean_loss(&probs, k, first.y_true.iter().copied());
    let metrics = FinalMetrics {
        loss,
        n_samples: first.y_true.len(),
        epochs: each.iter().map(|m| m.epochs).max().unwrap_or(0),
        device: each[0].device.clone(),
        trainable_params: each.iter().map(|m| m.trainable_params).sum(),
        train_seconds,
        images_per_sec: images_seen / train_seconds.max(1e-9),
        tta: each[0].tta,
        peak_rss_mb: each.iter().filter_map(|m| m.peak_rss_mb).reduce(f64::max),
        report,
    };
    run.write_json(files::METRICS, &metrics)?;
    Ok(metrics)
}
