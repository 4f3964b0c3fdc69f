//! One experiment file: each crate's section composed, typos rejected with file and
//! line. Reading needs no libtorch (the light `cnnlab report` reads run configs);
//! checking values against a model's plan is the torch binary's `checks.rs`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use cnnlab_augment::AugmentConfig;
use cnnlab_data::DataConfig;
use cnnlab_run::recipe::model::ModelConfig;
use cnnlab_run::recipe::train::TrainConfig;
use serde::{Deserialize, Serialize};

/// `[data]`, `[augment]`, `[model]`, `[train]`: each section is owned by its crate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    pub data: DataConfig,
    #[serde(default)]
    pub augment: AugmentConfig,
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    /// What the run should reach; `cnnlab report` lists whether it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
}

/// `[target]`: test-split goals of an experiment, e.g. `accuracy = 0.94`,
/// `minutes = 20` (of training time). Every given goal must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1_macro: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1_micro: Option<f64>,
    /// At most this many minutes of training (the run's `train_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<f64>,
}

/// How deep `extends` chains may go (a cycle would otherwise recurse forever).
const MAX_EXTENDS: usize = 8;

impl Experiment {
    /// Reads an experiment file without checking its values (the `cnnlab-torch`
    /// binary's `checks::load` does, with libtorch's crates): errors are one line,
    /// `FILE:LINE: message`. A file may start with `extends = "base.toml"` (relative
    /// to itself): its tables are merged over the base's, key by key. The files read
    /// come back too, to place a later check's error.
    pub fn read(path: &Path) -> Result<(Self, Sources)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let at = |line: Option<usize>, msg: String| match line {
            Some(line) => anyhow!("{}:{line}: {msg}", path.display()),
            None => anyhow!("{}: {msg}", path.display()),
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| at(line_of(&text, &e), clean(&e)))?;
        let mut chain = vec![(path.to_path_buf(), text)];
        if !table.contains_key("extends") {
            let exp = Self::parse(&chain[0].1).map_err(|(line, msg)| at(line, msg))?;
            return Ok((exp, Sources(chain)));
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
        Ok((exp, Sources(chain)))
    }

    /// The merged table of an experiment file and the files it extends, before it is
    /// read as an experiment: for files with sections of their own beside the
    /// experiment's (`cnnlab tune`'s `[tune]`). Errors are `FILE:LINE: message`.
    pub fn read_table(path: &Path) -> Result<(toml::Table, Sources)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| match line_of(&text, &e) {
            Some(line) => anyhow!("{}:{line}: {}", path.display(), clean(&e)),
            None => anyhow!("{}: {}", path.display(), clean(&e)),
        })?;
        let mut chain = vec![(path.to_path_buf(), text)];
        let merged = resolve(path, table, &mut chain)?;
        Ok((merged, Sources(chain)))
    }

    /// [`Experiment::read`], for what was checked when it was written: a run
    /// folder's `config.toml`, a config a report compares.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::read(path).map(|(exp, _)| exp)
    }

    /// One file's text, without `extends`: the error's line and message.
    pub fn parse(text: &str) -> Result<Self, (Option<usize>, String)> {
        toml::from_str(text).map_err(|e| (line_of(text, &e), clean(&e)))
    }
}

/// The files an experiment was read from, the file itself first, then the bases it
/// extends: where [`Sources::locate`] looks for a key.
#[derive(Debug, Clone)]
pub struct Sources(Vec<(PathBuf, String)>);

pub use cnnlab_run::recipe::Invalid;

/// The dotted keys whose values differ between two experiments, each as
/// `key: A vs B`, in key order; empty when they describe the same run. Both are
/// compared as the full resolved config, defaults written out, so a key one file
/// spells out and the other leaves at its default is no difference.
pub fn differences(a: &Experiment, b: &Experiment) -> Vec<String> {
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

impl Sources {
    /// `FILE:LINE: msg` for an [`Invalid`] value: the line of the deepest part of its
    /// key found in the chain of files (a child before its bases).
    pub fn locate(&self, invalid: Invalid) -> anyhow::Error {
        locate(&self.0, invalid)
    }
}

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
pub fn default_run_dir(config: &Path) -> PathBuf {
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
    use cnnlab_run::recipe::schedule::Schedule;

    fn read(path: &Path) -> Result<Experiment> {
        Experiment::from_file(path)
    }

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
        let exp = read(&child).unwrap();
        assert_eq!((exp.train.epochs, exp.train.lr), (5, 0.01));
        assert_eq!(exp.data.dataset, "mnist");
        assert_eq!(exp.data.imbalance.name(), "min_flip");

        // `kind` outside a tagged table is a plain key: the base's layers stay.
        std::fs::write(&child, "extends = \"base.toml\"\n[model]\nkind = \"one_vs_rest\"\n").unwrap();
        let exp = read(&child).unwrap();
        assert_eq!(exp.model.kind, cnnlab_run::recipe::model::ModelKind::OneVsRest);
        assert_eq!(exp.model.layers.len(), 2);

        // Another schedule kind replaces the base's table instead of merging into it.
        let schedule = |s: &str| format!("{GOOD}[train]\nepochs = 5\nschedule = {s}\n");
        std::fs::write(dir.path().join("base.toml"), schedule("{ kind = \"one_cycle\", pct_start = 0.25 }")).unwrap();
        std::fs::write(&child, "extends = \"base.toml\"\n[train]\nschedule = { kind = \"triangle\", peak = 0.3 }\n")
            .unwrap();
        let exp = read(&child).unwrap();
        assert_eq!(exp.train.schedule, Schedule::Triangle { start: 0.2, peak: 0.3, end: 0.07 });
        std::fs::write(
            &child,
            "extends = \"base.toml\"\n[train]\nschedule = { kind = \"one_cycle\", div_factor = 10.0 }\n",
        )
        .unwrap();
        let exp = read(&child).unwrap();
        assert_eq!(exp.train.schedule, Schedule::OneCycle { pct_start: 0.25, div_factor: 10.0, final_div_factor: 1e4 });
        std::fs::write(dir.path().join("base.toml"), format!("{GOOD}[train]\nepochs = 5\nlr = 0.1\n")).unwrap();

        std::fs::write(&child, "extends = \"base.toml\"\n\n[train]\nlrr = 0.01\n").unwrap();
        let err = read(&child).unwrap_err().to_string();
        assert_eq!(err, format!("{}:4: unknown field `lrr`, expected one of `epochs`, `batch_size`, `accumulate`, `eval_batch_size`, `optimizer`, `lr`, `weight_decay`, `momentum`, `nesterov`, `bias_lr_scale`, `seed`, `seeds`, `ensemble`, `device`, `schedule`, `warmup_epochs`, `label_smoothing`, `grad_clip`, `monitor`, `early_stopping`, `tta`, `lookahead`, `ema`, `precision`, `channels_last`, `mix`, `pipeline`, `freeze_epochs`, `backbone_lr_mult`, `requeue_on_signal`", child.display()));

        std::fs::write(&child, "extends = \"child.toml\"\n").unwrap();
        let err = read(&child).unwrap_err().to_string();
        assert_eq!(err, format!("`extends` cycle: {0} -> {0}", child.display()));
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "extends = \"child.toml\"\n").unwrap();
        std::fs::write(&child, "extends = \"other.toml\"\n").unwrap();
        let err = read(&child).unwrap_err().to_string();
        assert_eq!(err, format!("`extends` cycle: {0} -> {1} -> {0}", child.display(), other.display()));
        // An unknown table in a child names its line.
        std::fs::write(&child, "extends = \"base.toml\"\n\n[trian]\nepochs = 1\n").unwrap();
        let err = read(&child).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:3: unknown field `trian`", child.display())), "{err}");
        std::fs::write(&child, "extends = \"nope.toml\"\n").unwrap();
        let err = read(&child).unwrap_err().to_string();
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
