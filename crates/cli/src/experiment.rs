//! One experiment file: each crate's section composed, typos rejected with file and line.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use cnnlab_augment::AugmentConfig;
use cnnlab_data::DataConfig;
use cnnlab_models::ModelConfig;
use cnnlab_train::TrainConfig;
use serde::{Deserialize, Serialize};

/// `[data]`, `[augment]`, `[model]`, `[train]`: each section is owned by its crate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Experiment {
    pub(crate) data: DataConfig,
    #[serde(default)]
    pub(crate) augment: AugmentConfig,
    pub(crate) model: ModelConfig,
    #[serde(default)]
    pub(crate) train: TrainConfig,
}

impl Experiment {
    /// Reads and checks an experiment file; errors are one line, `FILE:LINE: message`.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text).map_err(|(line, msg)| match line {
            Some(line) => anyhow!("{}:{line}: {msg}", path.display()),
            None => anyhow!("{}: {msg}", path.display()),
        })
    }

    fn parse(text: &str) -> Result<Self, (Option<usize>, String)> {
        let exp: Experiment = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| text[..span.start].matches('\n').count() + 1);
            (line, e.message().trim().replace('\n', " "))
        })?;
        exp.train.validate().map_err(|msg| (None, msg))?;
        Ok(exp)
    }
}

/// `runs/<group>/<stem>/`, where group is the folder holding the config
/// (`configs/cifar10/seed3-final.toml` -> `runs/cifar10/seed3-final/`).
pub(crate) fn default_run_dir(config: &Path) -> PathBuf {
    let stem = config.file_stem().unwrap_or_default();
    let group = config.parent().and_then(Path::file_name).filter(|g| *g != "configs" && *g != ".");
    let mut dir = PathBuf::from("runs");
    if let Some(group) = group {
        dir.push(group);
    }
    dir.push(stem);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "[data]\ndataset = \"mnist\"\n[model]\nlayers = [{ type = \"flatten\" }, { type = \"linear\" }]\n";

    #[test]
    fn parses_and_fills_defaults() {
        let exp = Experiment::parse(GOOD).unwrap();
        assert_eq!(exp.train.batch_size, 64);
        assert!(exp.augment.ops.is_empty());
    }

    #[test]
    fn typos_name_line_and_key() {
        let check = |text: &str, line: usize, needle: &str| {
            let (l, msg) = Experiment::parse(text).unwrap_err();
            assert_eq!(l, Some(line), "{msg}");
            assert!(msg.contains(needle) && !msg.contains('\n'), "{msg}");
        };
        check(&format!("{GOOD}[train]\nepochs = 2\nlrr = 0.1\n"), 7, "unknown field `lrr`");
        check(&format!("{GOOD}[trian]\n"), 5, "unknown field `trian`");
        check("[data]\ndataset = \"mnist\"\n", 1, "missing field `model`");
        check(&format!("{GOOD}[train]\noptimizer = \"adma\"\n"), 6, "unknown variant `adma`");
        let (line, msg) = Experiment::parse(&format!("{GOOD}[train]\nepochs = 0\n")).unwrap_err();
        assert_eq!((line, msg.as_str()), (None, "train.epochs must be at least 1"));
    }

    #[test]
    fn run_dirs_follow_the_config_folder() {
        assert_eq!(
            default_run_dir(Path::new("configs/cifar10/seed3-final.toml")),
            Path::new("runs/cifar10/seed3-final")
        );
        assert_eq!(default_run_dir(Path::new("configs/x.toml")), Path::new("runs/x"));
        assert_eq!(default_run_dir(Path::new("x.toml")), Path::new("runs/x"));
    }
}
