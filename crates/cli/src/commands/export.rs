//! `cnnlab export`: a finished run as a file other tools load (ONNX, TorchScript).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cnnlab_data::ImageShape;
use cnnlab_metrics::stats::{self, Bootstrap, Metric, Predictions};
use cnnlab_train::{files, RunDir, Weights};

use super::predict::run_inputs;
use crate::ensemble::RunModel;
use cnnlab_cli::experiment::Experiment;

pub(crate) struct ExportArgs<'a> {
    pub run: &'a Path,
    pub format: &'a str,
    pub out: Option<&'a Path>,
    pub best: bool,
}

/// Writes `<run>/model.onnx` or `<run>/model.pt` (or `--out`): the run's network(s)
/// and normalisation in one graph, pixels in [0, 1] to `logits` and `probabilities`.
pub(crate) fn export_command(a: ExportArgs<'_>) -> Result<()> {
    let (exp, shape, classes) = run_inputs(a.run)?;
    let run = RunDir::new(a.run);
    // Training that started (a history or a resume checkpoint) and did not end; a
    // `cnnlab pretrained` folder has neither and exports as it is.
    let started = run.file(files::HISTORY).exists() || run.file(files::RESUME).exists();
    if started && !run.file(files::METRICS).exists() {
        bail!("{}: the run has not finished (no {}): export it after training ends", a.run.display(), files::METRICS);
    }
    let weights = if a.best { Weights::Best } else { Weights::Last };
    let model = RunModel::load(a.run, &exp, shape, &classes, weights)?;
    let metadata = vec![
        ("classes".to_owned(), serde_json::to_string(&classes)?),
        (
            "input".to_owned(),
            format!(
                "pixels: float32 [batch, {}, {}, {}] in [0, 1], RGB order",
                shape.channels, shape.height, shape.width
            ),
        ),
        ("outputs".to_owned(), "logits, probabilities: float32 [batch, classes]".to_owned()),
        ("model".to_owned(), if exp.model.name.is_empty() { "model".to_owned() } else { exp.model.name.clone() }),
        ("weights".to_owned(), if a.best { "best" } else { "last" }.to_owned()),
        ("cnnlab_version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
    ];
    if a.format == "folder" {
        let out: PathBuf = a.out.map_or_else(|| run.file("model"), Path::to_path_buf);
        return write_folder(
            &out,
            &Folder { run: &run, exp: &exp, shape, classes: &classes, model: &model, metadata: &metadata },
        );
    }
    if a.format == "torchscript" {
        let out: PathBuf = a.out.map_or_else(|| run.file("model.pt"), Path::to_path_buf);
        cnnlab_train::torchscript(model.predictors(), &out)
            .with_context(|| format!("{}: exporting to TorchScript", a.run.display()))?;
        println!("{}: torch.jit.load(\"{}\")(pixels) -> logits", out.display(), out.display());
        return Ok(());
    }
    let bytes = cnnlab_train::onnx_model(model.predictors(), &metadata)
        .with_context(|| format!("{}: exporting to ONNX", a.run.display()))?;
    let out: PathBuf = a.out.map_or_else(|| run.file("model.onnx"), Path::to_path_buf);
    cnnlab_train::write_bytes(&out, &bytes).with_context(|| format!("{}: writing the model", out.display()))?;
    println!(
        "{} ({:.1} MB): onnxruntime.InferenceSession(\"{}\")",
        out.display(),
        bytes.len() as f64 / 1e6,
        out.display()
    );
    Ok(())
}

/// What a model folder is made of.
struct Folder<'a> {
    run: &'a RunDir,
    exp: &'a Experiment,
    shape: ImageShape,
    classes: &'a [String],
    model: &'a RunModel,
    metadata: &'a [(String, String)],
}

/// A folder like a Hugging Face model repository: `model.safetensors` (the
/// originals' names for pretrained backbones), `model.onnx`, `config.json`, the
/// `README.md` model card and the confusion matrix picture. Written into
/// `<out>.tmp` and renamed, so a failure leaves nothing half-made.
fn write_folder(out: &Path, f: &Folder<'_>) -> Result<()> {
    if out.exists() {
        bail!("{} exists: remove it or choose another --out", out.display());
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("{}: creating the folder", tmp.display()))?;
    let made = fill_folder(&tmp, f).and_then(|()| {
        std::fs::rename(&tmp, out).with_context(|| format!("{}: moving the folder into place", out.display()))
    });
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    made?;
    println!("{}: model.safetensors, model.onnx, config.json, README.md (the model card)", out.display());
    Ok(())
}

fn fill_folder(dir: &Path, f: &Folder<'_>) -> Result<()> {
    let predictors = f.model.predictors();
    cnnlab_train::model_safetensors(predictors, &dir.join(cnnlab_train::MODEL_FOLDER_WEIGHTS))?;
    // The run files `predict` and `evaluate` read: the folder is a run folder too.
    for name in [files::CONFIG, files::SHAPE, files::CLASSES, files::NORMALIZER, files::METRICS] {
        if f.run.file(name).exists() {
            std::fs::copy(f.run.file(name), dir.join(name)).with_context(|| format!("copying {name}"))?;
        }
    }
    let onnx = cnnlab_train::onnx_model(predictors, f.metadata)?;
    cnnlab_train::write_bytes(&dir.join("model.onnx"), &onnx)?;
    let norm: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(f.run.file(files::NORMALIZER))?)?;
    let config = serde_json::json!({
        "library": "cnnlab",
        "cnnlab_version": env!("CARGO_PKG_VERSION"),
        "architecture": f.exp.model,
        "classes": f.classes,
        "input_size": [f.shape.channels, f.shape.height, f.shape.width],
        "mean": norm["mean"],
        "std": norm["std"],
        "interpolation": "bilinear (antialiased), to the input size",
        "pixels": "float32 in [0, 1], NCHW; model.onnx normalises inside, model.safetensors expects (x - mean) / std",
    });
    cnnlab_train::write_bytes(&dir.join("config.json"), serde_json::to_string_pretty(&config)?.as_bytes())?;
    let picture = f.run.file("plots").join("confusion.png");
    if picture.exists() {
        std::fs::copy(&picture, dir.join("confusion_matrix.png"))?;
    }
    let card = model_card(f, picture.exists())?;
    cnnlab_train::write_bytes(&dir.join("README.md"), card.as_bytes())?;
    Ok(())
}

/// The Hugging Face model card: a YAML header, then what the model is, its recipe,
/// its test metrics with 95% intervals, per-class scores, the confusion matrix, the
/// data and the limitations.
fn model_card(f: &Folder<'_>, picture: bool) -> Result<String> {
    let name = if f.exp.model.name.is_empty() { "model" } else { &f.exp.model.name };
    let (c, h, w) = (f.shape.channels, f.shape.height, f.shape.width);
    let dataset = &f.exp.data.dataset;
    let mut card = format!(
        "---\nlicense: other\nlibrary_name: cnnlab\npipeline_tag: image-classification\ntags:\n- image-classification\n- cnnlab\n- onnx\ndatasets:\n- {dataset}\nmetrics:\n- accuracy\n- f1\n---\n\n# {name} on {dataset}\n\nAn image classifier of {} classes trained with cnnlab {}: input {c}x{h}x{w} (channels x height x width).\n\n",
        f.classes.len(),
        env!("CARGO_PKG_VERSION")
    );
    card += &format!(
        "## Use\n\n```python\nimport numpy as np, onnxruntime as ort\nsession = ort.InferenceSession(\"model.onnx\")\n# pixels: float32 [batch, {c}, {h}, {w}] in [0, 1]; the graph normalises them\nprobabilities = session.run([\"probabilities\"], {{\"pixels\": pixels}})[0]\n```\n\n`model.safetensors` holds the weights under cnnlab's names (the originals' for the pretrained backbones, with PyTorch's `num_batches_tracked`), `config.json` the architecture, classes, input size and normalisation. The folder is also a cnnlab run folder: `cnnlab predict --run <this folder> photo.jpg`, `cnnlab evaluate --run <this folder> DIR`.\n\n"
    );
    let metrics = f.run.read_metrics().ok();
    card += "## Results on the test split\n\n";
    match (metrics, cnnlab_run::read_predictions(&f.run.file(files::PREDICTIONS))) {
        (Some(_), Ok(p)) => card += &results(&p)?,
        _ => card += "No test results: this folder was made from a run without a test evaluation.\n\n",
    }
    if picture {
        card += "![confusion matrix on the test split](confusion_matrix.png)\n\n";
    }
    let recipe = std::fs::read_to_string(f.run.file(files::CONFIG)).unwrap_or_default();
    card += &format!(
        "## Training recipe\n\nThe run's experiment file, as cnnlab resolved it:\n\n```toml\n{}\n```\n\n",
        recipe.trim_end()
    );
    card += &format!("## Data\n\n`{dataset}`, {} classes: {}.\n\n", f.classes.len(), f.classes.join(", "));
    card += &format!(
        "## Limitations\n\n- Trained on {h}x{w} images with {c} channel(s) of `{dataset}`: other images must be resized to {h}x{w}, and photos unlike the training data may be classified with confidence all the same.\n- It knows only these {} classes: anything else is given one of them.\n- The metrics above are on one test split; their intervals say how much that split alone leaves uncertain, not how the model does elsewhere.\n",
        f.classes.len()
    );
    Ok(card)
}

/// Accuracy and macro-F1 with 95% intervals (Wilson; bootstrap), then per class.
fn results(p: &cnnlab_run::Predictions) -> Result<String> {
    let k = p.classes.len();
    let preds = Predictions::new(&p.y_true, &p.y_pred, k)?;
    let correct = p.y_true.iter().zip(&p.y_pred).filter(|(t, q)| t == q).count() as u64;
    let accuracy = stats::wilson(correct, p.y_true.len() as u64, 0.95)?;
    let f1 = Bootstrap::default().interval(Metric::F1Macro, &preds)?;
    let report = cnnlab_metrics::Report::new(&p.y_true, &p.y_pred, p.scores.as_deref(), &p.classes)?;
    let mut text = format!(
        "| metric | value | 95% interval |\n|---|---|---|\n| accuracy | {:.4} | {:.4} - {:.4} (Wilson) |\n| macro-F1 | {:.4} | {:.4} - {:.4} (bootstrap, 2,000 resamples) |\n\n{} test images.\n\n### Per class\n\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n",
        accuracy.value,
        accuracy.low,
        accuracy.high,
        f1.value,
        f1.low,
        f1.high,
        p.y_true.len()
    );
    for row in &report.per_class {
        text += &format!(
            "| {} | {:.3} | {:.3} | {:.3} | {} |\n",
            row.class, row.precision, row.recall, row.f1, row.support
        );
    }
    text += "\n";
    Ok(text)
}
