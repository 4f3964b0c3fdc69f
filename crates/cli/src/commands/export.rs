//! `cnnlab export`: a finished run as a file other tools load (ONNX, TorchScript).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cnnlab_train::{files, RunDir, Weights};

use super::predict::run_inputs;
use crate::ensemble::RunModel;

pub(crate) struct ExportArgs<'a> {
    pub run: &'a Path,
    pub torchscript: bool,
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
    if a.torchscript {
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
