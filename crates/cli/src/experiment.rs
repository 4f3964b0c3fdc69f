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
        let mut chain = vec![(path.to_path_buf(), text)];
        if !table.contains_key("extends") {
            let exp = Self::parse(&chain[0].1).map_err(|(line, msg)| at(line, msg))?;
            exp.validate().map_err(|msg| locate(&chain, msg))?;
            return Ok(exp);
        }
        let merged = resolve(path, table, &mut chain)?;
        let exp = Experiment::deserialize(toml::Value::Table(merged)).map_err(|e| {
            // The merged table has no positions: find the offending key in the files.
            let msg = clean(&e);
            let key = msg.split('`').nth(1).unwrap_or("");
            for (file, text) in &chain {
                let names_key = |l: &str| {
                    let l = l.trim_start().trim_start_matches('[').trim_start();
                    l.strip_prefix(key).is_some_and(|rest| rest.starts_with([' ', '=', ']', '.']))
                };
                if let Some(line) = text.lines().position(|l| !key.is_empty() && names_key(l)) {
                    return anyhow!("{}:{}: {msg}", file.display(), line + 1);
                }
            }
            anyhow!("{}: {msg}", path.display())
        })?;
        exp.validate().map_err(|msg| locate(&chain, msg))?;
        Ok(exp)
    }

    fn parse(text: &str) -> Result<Self, (Option<usize>, String)> {
        toml::from_str(text).map_err(|e| (line_of(text, &e), clean(&e)))
    }

    /// Every section's own checks, in file order, then whether the model fits the
    /// dataset's images (when their shape is known without reading them). Runs before
    /// any data is read; each error says the dotted key it is about.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        self.data.validate().map_err(|e| match &e {
            cnnlab_data::Error::InvalidKey { key, .. } => Invalid::new(format!("data.{key}"), e.to_string()),
            _ => Invalid::new("data", e.to_string()),
        })?;
        for (index, op) in self.augment.ops.iter().enumerate() {
            op.validate(index).map_err(|e| match e {
                cnnlab_augment::Error::InvalidOp { index, field, message, .. } => {
                    let key = format!("augment.ops[{index}].{field}");
                    Invalid::new(key.clone(), format!("{key}: {message}"))
                }
                other => Invalid::new(format!("augment.ops[{index}]"), other.to_string()),
            })?;
        }
        if let Some((shape, classes)) = self.data.nominal() {
            let input = cnnlab_models::Shape::Map(shape.channels as i64, shape.height as i64, shape.width as i64);
            cnnlab_models::plan(&self.model, input, classes as i64).map_err(|e| match &e {
                cnnlab_models::Error::Layer { index, .. } => {
                    Invalid::new(format!("model.layers[{index}]"), e.to_string())
                }
                _ => Invalid::new("model", e.to_string()),
            })?;
        }
        self.train.validate().map_err(train_invalid)?;
        self.train_fits_model()?;
        if self.train.pipeline == cnnlab_train::Feed::Device {
            cnnlab_train::check_device_pipeline(&self.augment.ops).map_err(train_invalid)?;
        }
        if let Some(target) = &self.target {
            target.validate()?;
        }
        Ok(())
    }
}

/// A config value that cannot work: the dotted key it is about (`train.lr`,
/// `augment.ops[0].p`, `model.layers[8]`), which [`locate`] finds in the files, and the
/// whole message (`train.lr: must be a positive number`), unchanged from what each
/// section's validator says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    pub(crate) key: String,
    pub(crate) message: String,
}

impl Invalid {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid { key: key.into(), message: message.into() }
    }

    /// `key: why`, the message of the checks made here.
    fn keyed(key: &str, why: impl std::fmt::Display) -> Self {
        Invalid::new(key, format!("{key}: {why}"))
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A `[train]` error: its key when it has one.
fn train_invalid(e: cnnlab_train::Error) -> Invalid {
    match &e {
        cnnlab_train::Error::Invalid { key, .. } => Invalid::new(key.clone(), e.to_string()),
        cnnlab_train::Error::Unsupported { key, .. } => Invalid::new(*key, e.to_string()),
        _ => Invalid::new("train", e.to_string()),
    }
}

/// The dotted keys whose values differ between two experiments, each as
/// `key: A vs B`, in key order; empty when they describe the same run. Both are
/// compared as the full resolved config, defaults written out, so a key one file
/// spells out and the other leaves at its default is no difference.
pub(crate) fn differences(a: &Experiment, b: &Experiment) -> Vec<String> {
    let (a, b) = (toml::Value::try_from(a), toml::Value::try_from(b));
    let (Ok(a), Ok(b)) = (a, b) else { return vec!["(the configs do not serialize)".into()] };
    let mut out = Vec::new();
    diff_values("", &a, &b, &mut out);
    out
}

fn diff_values(key: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>) {
    match (a, b) {
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = if key.is_empty() { k.clone() } else { format!("{key}.{k}") };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_values(&sub, p, q, out),
                    (p, q) => out.push(format!("{sub}: {} vs {}", shown(p), shown(q))),
                }
            }
        }
        _ if a != b => out.push(format!("{key}: {} vs {}", shown(Some(a)), shown(Some(b)))),
        _ => {}
    }
}

fn shown(v: Option<&toml::Value>) -> String {
    v.map_or_else(|| "(unset)".into(), ToString::to_string)
}

impl Experiment {
    /// `[train]` keys that act on a `[model] backbone` need one (and freezing one
    /// needs pretrained weights to keep): otherwise they would be silently ignored.
    fn train_fits_model(&self) -> Result<(), Invalid> {
        let (t, m) = (&self.train, &self.model);
        if m.backbone.is_none() {
            if t.freeze_epochs > 0 {
                return Err(Invalid::keyed(
                    "train.freeze_epochs",
                    "freezes a [model] backbone, and this model has none",
                ));
            }
            if t.backbone_lr_mult != 1.0 {
                return Err(Invalid::keyed(
                    "train.backbone_lr_mult",
                    "scales a [model] backbone's rate, and this model has none",
                ));
            }
        } else if t.freeze_epochs > 0 && m.pretrained.is_none() {
            return Err(Invalid::keyed(
                "train.freeze_epochs",
                "the backbone is not pretrained (no model.pretrained), so freezing it would keep random weights",
            ));
        }
        Ok(())
    }

    /// Settings that are valid but probably not meant, as warnings naming the key
    /// (`cnnlab train` logs them once the command's overrides are applied).
    pub(crate) fn warnings(&self) -> Vec<String> {
        let t = &self.train;
        let mut out = Vec::new();
        if t.freeze_epochs > 0 && t.freeze_epochs >= t.epochs {
            out.push(format!(
                "train.freeze_epochs = {} >= train.epochs = {}: the backbone never trains, only the head does",
                t.freeze_epochs, t.epochs
            ));
        }
        out
    }
}

impl Target {
    fn validate(&self) -> Result<(), Invalid> {
        let fractions = [("accuracy", self.accuracy), ("f1_macro", self.f1_macro), ("f1_micro", self.f1_micro)];
        if let Some((key, v)) =
            fractions.iter().find_map(|(k, v)| v.filter(|v| !(0.0..=1.0).contains(v)).map(|v| (k, v)))
        {
            return Err(Invalid::keyed(&format!("target.{key}"), format!("{v} is outside [0, 1]")));
        }
        match self.minutes {
            Some(m) if !(m > 0.0 && m.is_finite()) => {
                Err(Invalid::keyed("target.minutes", format!("{m} must be a positive number")))
            }
            _ => Ok(()),
        }
    }
}

/// `FILE:LINE: msg` for an [`Invalid`] value: the line of the deepest part of its key
/// found in the chain of files (a child before its bases).
fn locate(chain: &[(PathBuf, String)], invalid: Invalid) -> anyhow::Error {
    let (key, msg) = (invalid.key.as_str(), invalid.message);
    let mut best: Option<(usize, &Path, usize)> = None;
    for (file, text) in chain {
        if let Some((depth, line)) = key_line(text, key) {
            if best.is_none_or(|(d, _, _)| depth > d) {
                best = Some((depth, file, line));
            }
        }
    }
    match best {
        Some((_, file, line)) => anyhow!("{}:{line}: {msg}", file.display()),
        None => anyhow!("{}: {msg}", chain[0].0.display()),
    }
}

/// How many parts of `key` (`a.b[2].c`) `text` spells out, and the line of the deepest.
fn key_line(text: &str, key: &str) -> Option<(usize, usize)> {
    use toml_edit::{Item, Table, Value};
    #[derive(Clone, Copy)]
    enum Node<'a> {
        Table(&'a Table),
        Item(&'a Item),
        Value(&'a Value),
    }
    type Span = Option<std::ops::Range<usize>>;
    fn child<'a>(node: Node<'a>, part: &str) -> Option<(Span, Node<'a>)> {
        if let Ok(index) = part.parse::<usize>() {
            return match node {
                Node::Item(Item::ArrayOfTables(tables)) => tables.get(index).map(|t| (t.span(), Node::Table(t))),
                Node::Item(item) => item.as_array()?.get(index).map(|v| (v.span(), Node::Value(v))),
                Node::Value(v) => v.as_array()?.get(index).map(|v| (v.span(), Node::Value(v))),
                Node::Table(_) => None,
            };
        }
        let (k, item) = match node {
            Node::Table(t) => t.get_key_value(part)?,
            Node::Item(item) => item.as_table_like()?.get_key_value(part)?,
            Node::Value(v) => v.as_inline_table()?.get_key_value(part)?,
        };
        Some((k.span(), Node::Item(item)))
    }
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let parts = key.split(['.', '[', ']']).filter(|p| !p.is_empty());
    let (mut node, mut depth, mut at) = (Node::Table(doc.as_table()), 0, None);
    for part in parts {
        let Some((span, next)) = child(node, part) else { break };
        depth += 1;
        at = span.map(|s| s.start).or(at);
        node = next;
    }
    at.map(|offset| (depth, text[..offset].matches('\n').count() + 1))
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
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if let Some(start) = chain.iter().position(|(p, _)| same(p, &base_path)) {
        let names: Vec<String> = chain[start..].iter().map(|(p, _)| p.display().to_string()).collect();
        bail!("`extends` cycle: {} -> {}", names.join(" -> "), base_path.display());
    }
    if chain.len() > MAX_EXTENDS {
        bail!("{}: `extends` chain is deeper than {MAX_EXTENDS}", path.display());
    }
    let text = std::fs::read_to_string(&base_path)
        .with_context(|| format!("{}: reading `extends` file {}", path.display(), base_path.display()))?;
    let base_table: toml::Table = toml::from_str(&text).map_err(|e| match line_of(&text, &e) {
        Some(line) => anyhow!("{}:{line}: {}", base_path.display(), clean(&e)),
        None => anyhow!("{}: {}", base_path.display(), clean(&e)),
    })?;
    chain.push((base_path.clone(), text));
    let mut merged = resolve(&base_path, base_table, chain)?;
    merge(&mut merged, table, "");
    Ok(merged)
}

/// The tables that are serde-tagged enums, by dotted path, and their tag key: a child
/// naming another variant replaces the base's table instead of merging into it.
const TAGGED: [(&str, &str); 2] = [("train.schedule", "kind"), ("data.imbalance", "strategy")];

/// Tables merge key by key; any other value (arrays included) replaces the base's,
/// and so does a tagged table ([`TAGGED`]) that names another variant, e.g. a
/// `schedule = { kind = "triangle" }` over a one-cycle schedule's `pct_start`. A `kind`
/// anywhere else is a plain key (`[model] kind = "one_vs_rest"` keeps the base's layers).
fn merge(base: &mut toml::Table, over: toml::Table, path: &str) {
    for (key, value) in over {
        let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        let tag = TAGGED.iter().find(|(p, _)| *p == here).map(|(_, tag)| *tag);
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o))
                if tag.is_none_or(|t| o.get(t).is_none() || o.get(t) == b.get(t)) =>
            {
                merge(b, o, &here)
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

    /// Two configs that spell the same run differently have no differences; a changed
    /// value, a key set against a default, and a changed layer are named by dotted key.
    #[test]
    fn differences_name_the_keys_that_change_the_run() {
        let a = Experiment::parse(GOOD).unwrap();
        let spelled = Experiment::parse(&format!("{GOOD}[train]\nbatch_size = 64\n")).unwrap();
        assert!(differences(&a, &spelled).is_empty());
        let text = GOOD.replace("{ type = \"linear\" }", "{ type = \"linear\", out = 10 }");
        let b = Experiment::parse(&format!(
            "{text}[train]\nlr = 0.5\nseed = 0\n[augment]\nops = [{{ op = \"hflip\", p = 0.5 }}]\n"
        ))
        .unwrap();
        let d = differences(&a, &b);
        assert!(d.contains(&"train.lr: 0.001 vs 0.5".to_owned()), "{d:?}");
        assert!(
            d.iter().any(|k| k.starts_with("model.layers")) && d.iter().any(|k| k.starts_with("augment.ops")),
            "{d:?}"
        );
        assert!(!d.iter().any(|k| k.starts_with("train.seed")), "seed 0 is the default: {d:?}");
    }

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
        let exp = Experiment::parse(&format!("{GOOD}[train]\nepochs = 0\n")).unwrap();
        assert_eq!(exp.validate().unwrap_err().to_string(), "train.epochs: must be at least 1");
    }

    #[test]
    fn invalid_values_name_file_line_and_key() {
        // Every section's validator runs at load, and its dotted key finds its line,
        // in the file that sets it (a child before its base).
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.toml");
        std::fs::write(&base, format!("{GOOD}[train]\nepochs = 0\n")).unwrap();
        let err = Experiment::load(&base).unwrap_err().to_string();
        assert_eq!(err, format!("{}:6: train.epochs: must be at least 1", base.display()));
        let child = dir.path().join("child.toml");
        let ops = "extends = \"base.toml\"\n[train]\nepochs = 2\n[augment]\nops = [\n  { op = \"random_crop\", padding = 4 },\n  { op = \"hflip\", p = 2 },\n]\n";
        std::fs::write(&child, ops).unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:7: augment.ops[1].p: ", child.display())), "{err}");
        let swapped = "extends = \"base.toml\"\n[train]\nepochs = 2\n[augment]\nops = [{ op = \"brightness\", min = 1.5, max = 0.5 }]\n";
        std::fs::write(&child, swapped).unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:5: augment.ops[0].", child.display())), "{err}");
        // Data values are data errors, located too (not "conv kernel 3 is larger than 0x0").
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nepochs = 2\n[data]\nimage_size = 0\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:5: data.image_size: must be at least 1", child.display()));
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nepochs = 2\n[data]\n\nval_fraction = 1.5\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:6: data.val_fraction: 1.5 is outside [0, 1)", child.display()));
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nepochs = 2\n[target]\naccuracy = 94\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:5: target.accuracy: 94 is outside [0, 1]", child.display()));
    }

    /// Keys that would do nothing are errors naming the key and its line (or, when the
    /// setting is legal but likely unmeant, a warning): seeds = [], the backbone's keys
    /// without a backbone, freezing a backbone with random weights.
    #[test]
    fn keys_without_effect_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.toml");
        let load = |train: &str, model: &str| {
            let text = format!("[data]\ndataset = \"cifar10\"\n\n[model]\n{model}\n\n[train]\n{train}\n");
            std::fs::write(&file, text).unwrap();
            Experiment::load(&file).map_err(|e| e.to_string())
        };
        let plain = "layers = [{ type = \"flatten\" }, { type = \"linear\" }]";
        let f = file.display();
        assert_eq!(
            load("seeds = []", plain).unwrap_err(),
            format!("{f}:8: `seeds` = [] trains nothing: list the seeds (seeds = [0, 1, 2]) or leave train.seeds out")
        );
        assert_eq!(
            load("epochs = 3\nfreeze_epochs = 1", plain).unwrap_err(),
            format!("{f}:9: train.freeze_epochs: freezes a [model] backbone, and this model has none")
        );
        assert_eq!(
            load("backbone_lr_mult = 0.1", plain).unwrap_err(),
            format!("{f}:8: train.backbone_lr_mult: scales a [model] backbone's rate, and this model has none")
        );
        let random = "backbone = \"resnet18\"\nlayers = [{ type = \"linear\" }]";
        let err = load("freeze_epochs = 1", random).unwrap_err();
        assert!(err.starts_with(&format!("{f}:9: train.freeze_epochs: the backbone is not pretrained")), "{err}");
        let pretrained = format!("{random}\npretrained = \"w.safetensors\"");
        let exp = load("epochs = 2\nfreeze_epochs = 2\nbackbone_lr_mult = 0.1", &pretrained).unwrap();
        assert_eq!(
            exp.warnings(),
            ["train.freeze_epochs = 2 >= train.epochs = 2: the backbone never trains, only the head does"]
        );
        assert!(load("epochs = 3\nfreeze_epochs = 2", &pretrained).unwrap().warnings().is_empty());
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

        // `kind` outside a tagged table is a plain key: the base's layers stay.
        std::fs::write(&child, "extends = \"base.toml\"\n[model]\nkind = \"one_vs_rest\"\n").unwrap();
        let exp = Experiment::load(&child).unwrap();
        assert_eq!(exp.model.kind, cnnlab_models::ModelKind::OneVsRest);
        assert_eq!(exp.model.layers.len(), 2);

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
        assert_eq!(err, format!("{}:4: unknown field `lrr`, expected one of `epochs`, `batch_size`, `accumulate`, `eval_batch_size`, `optimizer`, `lr`, `weight_decay`, `momentum`, `nesterov`, `bias_lr_scale`, `seed`, `seeds`, `ensemble`, `device`, `schedule`, `warmup_epochs`, `label_smoothing`, `grad_clip`, `monitor`, `early_stopping`, `tta`, `lookahead`, `ema`, `precision`, `channels_last`, `mix`, `pipeline`, `freeze_epochs`, `backbone_lr_mult`, `requeue_on_signal`", child.display()));

        std::fs::write(&child, "extends = \"child.toml\"\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("`extends` cycle: {0} -> {0}", child.display()));
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "extends = \"child.toml\"\n").unwrap();
        std::fs::write(&child, "extends = \"other.toml\"\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert_eq!(err, format!("`extends` cycle: {0} -> {1} -> {0}", child.display(), other.display()));
        // An unknown table in a child names its line.
        std::fs::write(&child, "extends = \"base.toml\"\n\n[trian]\nepochs = 1\n").unwrap();
        let err = Experiment::load(&child).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:3: unknown field `trian`", child.display())), "{err}");
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

/// Fuzzing the experiment loader: TOML-like text, mutated shipped configs and
/// mutated `extends` children load or fail with a one-line message, never a panic.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn mutate(text: &str, edits: &[(usize, char)]) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        for &(at, c) in edits {
            let n = chars.len();
            chars[at % n] = c;
        }
        chars.into_iter().collect()
    }

    fn edit() -> impl Strategy<Value = (usize, char)> {
        (
            any::<usize>(),
            prop_oneof![Just('0'), Just('-'), Just('"'), Just('['), Just('='), Just('\n'), Just('9'), Just('.')],
        )
    }

    fn check(dir: &Path, name: &str, text: &str) -> std::result::Result<(), TestCaseError> {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        if let Err(e) = Experiment::load(&path) {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n'), "{}", msg);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(cnnlab_cli::args::fuzz_cases(128)))]

        #[test]
        fn toml_like_text_never_panics(text in "(\\[data\\]|\\[model\\]|\\[train\\]|\\[augment\\]|dataset = \"mnist\"|layers = \\[\\{ type = \"linear\" \\}\\]|epochs = |image_size = |[0-9\n=\\-\\.\"\\[\\]{}]){0,30}") {
            let dir = tempfile::tempdir().unwrap();
            check(dir.path(), "x.toml", &text)?;
        }

        #[test]
        fn mutated_shipped_configs_never_panic(which in 0usize..4, edits in proptest::collection::vec(edit(), 1..4)) {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
            let file = ["shapes/seed3-final.toml", "cifar10/fast94.toml", "pets/seed2-model3.toml", "simpsons/seed0-alexnet-elu.toml"][which];
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let dir = tempfile::tempdir().unwrap();
            check(dir.path(), "x.toml", &mutate(&text, &edits))?;
            // The same edits in a child that extends the intact file.
            std::fs::write(dir.path().join("base.toml"), &text).unwrap();
            let child = mutate("extends = \"base.toml\"\n[train]\nepochs = 3\nlr = 0.01\n[model]\nkind = \"standard\"\n", &edits);
            check(dir.path(), "child.toml", &child)?;
        }
    }
}
