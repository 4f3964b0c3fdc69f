//! One experiment file: each crate's section composed, typos rejected with file and line.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
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
    /// What the run should reach; `cnnlab report` lists whether it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<Target>,
}

/// `[target]`: test-split goals of an experiment, e.g. `accuracy = 0.94`,
/// `minutes = 20` (of training time). Every given goal must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) f1_macro: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) f1_micro: Option<f64>,
    /// At most this many minutes of training (the run's `train_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) minutes: Option<f64>,
}

/// How deep `extends` chains may go (a cycle would otherwise recurse forever).
const MAX_EXTENDS: usize = 8;

impl Experiment {
    /// Reads and checks an experiment file; errors are one line, `FILE:LINE: message`.
    /// A file may start with `extends = "base.toml"` (relative to itself): its tables
    /// are merged over the base's, key by key.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let at = |line: Option<usize>, msg: String| match line {
            Some(line) => anyhow!("{}:{line}: {msg}", path.display()),
            None => anyhow!("{}: {msg}", path.display()),
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| at(line_of(&text, &e), clean(&e)))?;
        if !table.contains_key("extends") {
            return Self::parse(&text).map_err(|(line, msg)| at(line, msg));
        }
        let mut chain = vec![(path.to_path_buf(), text)];
        let merged = resolve(path, table, &mut chain)?;
        let exp = Experiment::deserialize(toml::Value::Table(merged)).map_err(|e| {
            // The merged table has no positions: find the offending key in the files.
            let msg = clean(&e);
            let key = msg.split('`').nth(1).unwrap_or("");
            for (file, text) in &chain {
                if let Some(line) = text.lines().position(|l| l.trim_start().starts_with(key) && !key.is_empty()) {
                    return anyhow!("{}:{}: {msg}", file.display(), line + 1);
                }
            }
            anyhow!("{}: {msg}", path.display())
        })?;
        exp.train.validate().map_err(|msg| at(None, msg))?;
        Ok(exp)
    }

    fn parse(text: &str) -> Result<Self, (Option<usize>, String)> {
        let exp: Experiment = toml::from_str(text).map_err(|e| (line_of(text, &e), clean(&e)))?;
        exp.train.validate().map_err(|msg| (None, msg))?;
        Ok(exp)
    }
}

fn line_of(text: &str, e: &toml::de::Error) -> Option<usize> {
    e.span().map(|span| text[..span.start].matches('\n').count() + 1)
}

fn clean(e: &toml::de::Error) -> String {
    e.message().trim().replace('\n', " ")
}

/// Merges `table` over the chain of files it extends.
fn resolve(path: &Path, mut table: toml::Table, chain: &mut Vec<(PathBuf, String)>) -> Result<toml::Table> {
    let Some(base) = table.remove("extends") else { return Ok(table) };
    let Some(base) = base.as_str() else {
        bail!("{}: `extends` must be a file name", path.display());
    };
    if chain.len() > MAX_EXTENDS {
        bail!("{}: `extends` chain is deeper than {MAX_EXTENDS} (a cycle?)", path.display());
    }
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let text = std::fs::read_to_string(&base_path)
        .with_context(|| format!("{}: reading `extends` file {}", path.display(), base_path.display()))?;
    let base_table: toml::Table = toml::from_str(&text).map_err(|e| match line_of(&text, &e) {
        Some(line) => anyhow!("{}:{line}: {}", base_path.display(), clean(&e)),
        None => anyhow!("{}: {}", base_path.display(), clean(&e)),
    })?;
    chain.push((base_path.clone(), text));
    let mut merged = resolve(&base_path, base_table, chain)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Tables merge key by key; any other value (arrays included) replaces the base's,
/// and so does a table that names another variant (`kind` or `strategy`), e.g. a
/// `schedule = { kind = "triangle" }` over a one-cycle schedule's `pct_start`.
fn merge(base: &mut toml::Table, over: toml::Table) {
    let variant = |t: &toml::Table| ["kind", "strategy"].iter().find_map(|k| t.get(*k).cloned());
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o))
                if variant(&o).is_none() || variant(&o) == variant(b) =>
            {
                merge(b, o)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
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
    use cnnlab_train::Schedule;

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
    fn extends_merges_tables_and_keeps_error_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.toml"), format!("{GOOD}[train]\nepochs = 5\nlr = 0.1\n")).unwrap();
        let child = dir.path().join("child.toml");
        std::fs::write(
            &child,
            "extends = \"base.toml\"\n[train]\nlr = 0.01\n[data.imbalance]\nstrategy = \"min_flip\"\nper_class = 9\n",
        )
        .unwrap();
        let exp = Experiment::load(&child).unwrap();
        assert_eq!((exp.train.epochs, exp.train.lr), (5, 0.01));
        assert_eq!(exp.data.dataset, "mnist");
        assert_eq!(exp.data.imbalance.name(), "min_flip");

        // Another schedule kind replaces the base's table instead of merging into it.
        let schedule = |s: &str| format!("{GOOD}[train]\nepochs = 5\nschedule = {s}\n");
        std::fs::write(dir.path().join("base.toml"), schedule("{ kind = \"one_cycle\", pct_start = 0.25 }")).unwrap();
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nschedule = { kind = \"triangle\", peak = 0.3 }\n")
            .unwrap();
        let exp = Experiment::load(&child).unwrap();
        assert_eq!(exp.train.schedule, Schedule::Triangle { start: 0.2, peak: 0.3, end: 0.07 });
        std::fs::write(
            &child,
            "extends = \"base.toml\"\n[train]\nschedule = { kind = \"one_cycle\", div_factor = 10.0 }\n",
        )
        .unwrap();
        let exp = Experiment::load(&child).unwrap();
        assert_eq!(exp.train.schedule, Schedule::OneCycle { pct_start: 0.25, div_factor: 10.0, final_div_factor: 1e4 });
        std::fs::write(dir.path().join("base.toml"), format!("{GOOD}[train]\nepochs = 5\nlr = 0.1\n")).unwrap();

        std::fs::write(&child, "extends = \"base.toml\"\n\n[train]\nlrr = 0.01\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:4: unknown field `lrr`, expected one of `epochs`, `batch_size`, `eval_batch_size`, `optimizer`, `lr`, `weight_decay`, `momentum`, `nesterov`, `bias_lr_scale`, `seed`, `device`, `schedule`, `warmup_epochs`, `label_smoothing`, `grad_clip`, `monitor`, `early_stopping`, `tta`, `lookahead`, `mix`, `pipeline`", child.display()));

        std::fs::write(&child, "extends = \"child.toml\"\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert!(err.contains("deeper than 8"), "{err}");
        std::fs::write(&child, "extends = \"nope.toml\"\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert!(err.contains("reading `extends` file"), "{err}");
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
