//! `cnnlab predict` and `cnnlab summary`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cnnlab_data::ImageShape;
use cnnlab_models::{plan, summary, thousands, Shape};
use cnnlab_train::{files, RunDir, Tta, Weights};

use crate::checks;
use crate::ensemble::RunModel;
use crate::exit::Outcome;
use cnnlab_cli::experiment::Experiment;

/// The input shape and class count a model of `exp` gets: from `--classes` /
/// the dataset's public form, else by reading the dataset.
fn input_of(exp: &Experiment, data_dir: &Path, classes: Option<usize>) -> Outcome<(ImageShape, usize)> {
    if let Some((shape, n)) = exp.data.nominal() {
        return Ok((shape, classes.unwrap_or(n)));
    }
    // An image folder decoded to `image_size`: nothing to read when the classes are given.
    if let (Some(side), Some(n)) = (exp.data.image_size, classes) {
        let shape = ImageShape { channels: exp.data.channels.unwrap_or(3), height: side, width: side };
        return Ok((shape, n));
    }
    let splits = cnnlab_data::load(&exp.data, data_dir).map_err(super::data::data_failure)?;
    Ok((splits.train.shape, classes.unwrap_or(splits.train.num_classes())))
}

/// Prints the layer table and parameter totals of CONFIG's model.
pub(crate) fn summary_command(config: &Path, data_dir: &Path, classes: Option<usize>) -> Outcome {
    let exp = checks::load(config)?;
    let (shape, n) = input_of(&exp, data_dir, classes)?;
    let input = Shape::from(shape);
    // One-vs-rest trains n binary networks: the table is one of them, as `train` builds it.
    let ovr = exp.model.kind == cnnlab_models::ModelKind::OneVsRest;
    let outputs = if ovr { 2 } else { n as i64 };
    let rows = plan(&exp.model, input, outputs).with_context(|| format!("{}: [model]", config.display()))?;
    let name = if exp.model.name.is_empty() { "model" } else { &exp.model.name };
    println!(
        "{name}: input {}x{}x{} (channels x height x width), {n} classes{}",
        shape.channels,
        shape.height,
        shape.width,
        if ovr {
            format!("; one-vs-rest: {n} binary networks (class vs the rest) like this one")
        } else {
            String::new()
        }
    );
    print!("{}", summary(&rows, input));
    if ovr {
        let one: i64 = rows.iter().map(|r| r.trainable).sum();
        println!("All {n} networks: {} trainable params", thousands(one * n as i64));
    }
    Ok(())
}

/// What a run folder holds about its data (written by `cnnlab train`).
pub(crate) fn run_inputs(dir: &Path) -> Result<(Experiment, ImageShape, Vec<String>)> {
    let run = RunDir::new(dir);
    let config = run.file(files::CONFIG);
    if !config.exists() {
        bail!("{} is missing: is {} a cnnlab run folder?", config.display(), dir.display());
    }
    let exp = checks::load(&config)?;
    Ok((exp, run.read_shape()?, run.read_classes()?))
}

pub(crate) struct PredictArgs<'a> {
    pub run: &'a Path,
    pub inputs: &'a [PathBuf],
    pub top: usize,
    pub submission: Option<&'a Path>,
    /// `None`: the run's own `train.tta`.
    pub tta: Option<Tta>,
    pub best: bool,
}

/// "last weights, tta flip": what a prediction used, for its output.
fn used(best: bool, tta: Tta) -> String {
    format!("{} weights, tta {}", if best { "best" } else { "last" }, tta.name())
}

/// `cnnlab predict`: the run's own inference (the weights and test-time augmentation
/// of its test metrics, as `evaluate`) on unlabeled images.
pub(crate) fn predict_command(a: PredictArgs<'_>) -> Result<()> {
    let (exp, shape, classes) = run_inputs(a.run)?;
    let weights = if a.best { Weights::Best } else { Weights::Last };
    let predictor = RunModel::load(a.run, &exp, shape, &classes, weights)?;
    let tta = a.tta.unwrap_or(exp.train.tta);
    let k = classes.len();
    if let Some(out) = a.submission {
        let [dir] = a.inputs else { bail!("--submission takes exactly one folder of images") };
        let (pixels, files, report) = cnnlab_data::read_unlabeled(dir, shape)?;
        if let Some(s) = report.summary() {
            tracing::warn!("{s}");
        }
        let mut w = csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
        w.write_record(["Id", "Expected"])?;
        let per = shape.len();
        for (chunk, names) in pixels.chunks(per * 256).zip(files.chunks(256)) {
            let probs = predictor.predict_tta(chunk, tta)?;
            for (best, file) in cnnlab_metrics::argmax_rows(&probs, k).into_iter().zip(names) {
                let id = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into());
                w.write_record([id, classes[best].clone()])?;
            }
        }
        w.flush().with_context(|| format!("writing {}", out.display()))?;
        println!("{} predictions written to {} ({})", files.len(), out.display(), used(a.best, tta));
        return Ok(());
    }
    if a.inputs.is_empty() {
        bail!("give image files to classify, or --submission OUT.csv DIR");
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}: {}", a.run.display(), used(a.best, tta))?;
    // A file that does not decode is reported and skipped; the rest are classified.
    let mut failed = 0;
    for path in a.inputs {
        let (pixels, (w, h)) = match cnnlab_data::folder::decode(path, shape) {
            Ok(decoded) => decoded,
            Err(e) => {
                stdout.flush()?;
                eprintln!("error: {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let probs = predictor.predict_tta(&pixels, tta)?;
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&x, &y| probs[y].total_cmp(&probs[x]));
        writeln!(stdout, "{} ({w}x{h})", path.display())?;
        writeln!(stdout, "  {:<28} {:>11}", "class", "probability")?;
        for &c in order.iter().take(a.top) {
            writeln!(stdout, "  {:<28} {:>11.4}", classes[c], probs[c])?;
        }
    }
    if failed > 0 {
        bail!("{failed} of {} images could not be read (named above)", a.inputs.len());
    }
    Ok(())
}

pub(crate) struct EvaluateArgs<'a> {
    pub run: &'a Path,
    pub dir: &'a Path,
    /// `None`: the run's own `train.tta`.
    pub tta: Option<Tta>,
    pub best: bool,
    pub out: Option<&'a Path>,
    pub json: bool,
    pub quiet: bool,
}

/// `cnnlab evaluate`: a trained run on a labeled folder (`DIR/<class>/*.jpg`), like
/// Keras' `model.evaluate`: every metric of `cnnlab metrics`, with the run's final
/// weights and test-time augmentation unless told otherwise.
pub(crate) fn evaluate_command(a: EvaluateArgs<'_>) -> Result<()> {
    let (exp, shape, classes) = run_inputs(a.run)?;
    let weights = if a.best { Weights::Best } else { Weights::Last };
    let predictor = RunModel::load(a.run, &exp, shape, &classes, weights)?;
    let tta = a.tta.unwrap_or(exp.train.tta);
    let (data, files, report) = cnnlab_data::read_labeled(a.dir, shape, &classes, a.quiet)?;
    if let Some(s) = report.summary() {
        tracing::warn!("{s}");
    }
    let (k, per) = (classes.len(), shape.len());
    let mut probs = Vec::with_capacity(data.len() * k);
    for chunk in data.pixels().chunks(per * 256) {
        probs.extend(predictor.predict_tta(chunk, tta)?);
    }
    let y_true: Vec<usize> = data.labels.iter().map(|&l| usize::from(l)).collect();
    // The same scoring as a run's own test report.
    let metrics = cnnlab_train::score(&y_true, &probs, &classes)
        .with_context(|| format!("computing metrics on {}", a.dir.display()))?;
    let y_pred = cnnlab_metrics::argmax_rows(&probs, k);
    if let Some(out) = a.out {
        let rows = files
            .iter()
            .enumerate()
            .map(|(i, file)| (file.display().to_string(), y_true[i], y_pred[i], &probs[i * k..(i + 1) * k]));
        let fingerprints = cnnlab_data::Fingerprints::of_files(&files)?;
        cnnlab_train::write_predictions(out, "file", &classes, rows, Some(fingerprints.as_column()))?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
        return Ok(());
    }
    println!("{}: {} images of {}, {}", a.run.display(), data.len(), a.dir.display(), used(a.best, tta));
    print!("{}", metrics.text());
    println!();
    cnnlab_cli::metrics_cmd::print_scores(&metrics);
    if let Some(out) = a.out {
        println!("predictions written to {}", out.display());
    }
    Ok(())
}
