//! `[tune.space]`: which keys of the experiment a study varies and over what, and
//! how a sampled value is written into a config.
//!
//! ```toml
//! [tune.space]
//! "train.lr" = { log_uniform = [1e-4, 3e-1] }
//! "train.batch_size" = { choice = [64, 128, 256] }
//! "augment.ops[0].p" = { uniform = [0.0, 1.0] }
//! "train.epochs" = { int = [5, 20] }
//! ```

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};

/// What one key ranges over.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    Uniform {
        low: f64,
        high: f64,
    },
    LogUniform {
        low: f64,
        high: f64,
    },
    /// Whole numbers, both ends included.
    Int {
        low: i64,
        high: i64,
    },
    Choice(Vec<toml::Value>),
}

impl Dist {
    /// As the study file's first line records it: `{"log_uniform": [low, high]}`, ...
    pub fn describe(&self) -> serde_json::Value {
        match self {
            Dist::Uniform { low, high } => serde_json::json!({ "uniform": [low, high] }),
            Dist::LogUniform { low, high } => serde_json::json!({ "log_uniform": [low, high] }),
            Dist::Int { low, high } => serde_json::json!({ "int": [low, high] }),
            Dist::Choice(values) => {
                serde_json::json!({ "choice": values.iter().map(|v| serde_json::to_value(v).unwrap_or_default()).collect::<Vec<_>>() })
            }
        }
    }
}

/// The keys a study varies, in key order.
pub type Space = BTreeMap<String, Dist>;

/// One sampled value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    /// The index among the choices, and the choice.
    Choice(usize, toml::Value),
}

impl Value {
    pub fn to_toml(&self) -> toml::Value {
        match self {
            Value::Float(f) => toml::Value::Float(*f),
            Value::Int(i) => toml::Value::Integer(*i),
            Value::Choice(_, v) => v.clone(),
        }
    }

    /// As the study file stores it (a choice as its value; reading it back needs the
    /// space, [`Value::from_json`]).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Float(f) => serde_json::json!(f),
            Value::Int(i) => serde_json::json!(i),
            Value::Choice(_, v) => serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        }
    }

    pub fn from_json(dist: &Dist, v: &serde_json::Value) -> Option<Self> {
        match dist {
            Dist::Uniform { .. } | Dist::LogUniform { .. } => v.as_f64().map(Value::Float),
            Dist::Int { .. } => v.as_i64().map(Value::Int),
            Dist::Choice(values) => values
                .iter()
                .position(|c| serde_json::to_value(c).ok().as_ref() == Some(v))
                .map(|i| Value::Choice(i, values[i].clone())),
        }
    }

    /// A short form for tables and logs: 4 significant digits.
    pub fn shown(&self) -> String {
        match self {
            Value::Float(f) if f.abs() >= 1e-3 && f.abs() < 1e4 => format!("{}", (f * 1e4).round() / 1e4),
            Value::Float(f) => format!("{f:.3e}"),
            Value::Int(i) => i.to_string(),
            Value::Choice(_, v) => v.to_string(),
        }
    }
}

/// Parses `[tune.space]` (a table of key -> `{ kind = [..] }`); errors name the key.
pub fn parse_space(table: &toml::Table) -> Result<Space> {
    let mut space = Space::new();
    for (key, spec) in table {
        let bad = |msg: String| anyhow!("tune.space.\"{key}\": {msg}");
        let spec = spec.as_table().ok_or_else(|| bad("must be a table like { uniform = [0.0, 1.0] }".into()))?;
        let [(kind, range)] = spec.iter().collect::<Vec<_>>()[..] else {
            return Err(bad("give exactly one of uniform, log_uniform, int, choice".into()));
        };
        let pair = |range: &toml::Value| -> Result<(f64, f64)> {
            let list =
                range.as_array().filter(|a| a.len() == 2).ok_or_else(|| bad(format!("{kind} takes [low, high]")))?;
            let num = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
            match (num(&list[0]), num(&list[1])) {
                (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Ok((lo, hi)),
                _ => Err(bad(format!("{kind} takes [low, high] with low < high"))),
            }
        };
        let dist = match kind.as_str() {
            "uniform" => {
                let (low, high) = pair(range)?;
                Dist::Uniform { low, high }
            }
            "log_uniform" => {
                let (low, high) = pair(range)?;
                if low <= 0.0 {
                    return Err(bad("log_uniform needs low > 0".into()));
                }
                Dist::LogUniform { low, high }
            }
            "int" => {
                let (low, high) = pair(range)?;
                if low.fract() != 0.0 || high.fract() != 0.0 {
                    return Err(bad("int takes whole numbers".into()));
                }
                Dist::Int { low: low as i64, high: high as i64 }
            }
            "choice" => {
                let values = range
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad("choice takes a non-empty list".into()))?;
                Dist::Choice(values.clone())
            }
            other => return Err(bad(format!("unknown distribution `{other}` (uniform, log_uniform, int, choice)"))),
        };
        space.insert(key.clone(), dist);
    }
    if space.is_empty() {
        bail!("tune.space: give at least one key to tune");
    }
    Ok(space)
}

/// One part of a dotted key: a table key or an array index.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Key(String),
    Index(usize),
}

fn parts(key: &str) -> Result<Vec<Part>> {
    let mut out = Vec::new();
    for piece in key.split('.') {
        let (name, mut rest) = match piece.find('[') {
            Some(i) => (&piece[..i], &piece[i..]),
            None => (piece, ""),
        };
        if name.is_empty() {
            bail!("`{key}` is not a dotted key like train.lr or augment.ops[0].p");
        }
        out.push(Part::Key(name.to_owned()));
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']').ok_or_else(|| anyhow!("`{key}`: unclosed ["))?;
            let index =
                stripped[..end].parse().map_err(|_| anyhow!("`{key}`: `{}` is not an index", &stripped[..end]))?;
            out.push(Part::Index(index));
            rest = &stripped[end + 1..];
        }
        if !rest.is_empty() {
            bail!("`{key}`: unexpected `{rest}`");
        }
    }
    Ok(out)
}

/// Writes `value` at the dotted `key` of `config` (a resolved experiment table):
/// missing tables are created (a key left at its default), array elements must exist.
pub fn set(config: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts = parts(key)?;
    let mut root = toml::Value::Table(std::mem::take(config));
    let result = set_in(&mut root, &parts, 0, value);
    if let toml::Value::Table(table) = root {
        *config = table;
    }
    result
}

fn set_in(node: &mut toml::Value, parts: &[Part], at: usize, value: toml::Value) -> Result<()> {
    let last = at + 1 == parts.len();
    match &parts[at] {
        Part::Key(k) => {
            let table = node.as_table_mut().ok_or_else(|| anyhow!("{} is not a table", render(&parts[..at])))?;
            if last {
                table.insert(k.clone(), value);
                return Ok(());
            }
            let child = table.entry(k.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            set_in(child, parts, at + 1, value)
        }
        Part::Index(n) => {
            let array = node.as_array_mut().ok_or_else(|| anyhow!("{} is not a list", render(&parts[..at])))?;
            let len = array.len();
            let child = array
                .get_mut(*n)
                .ok_or_else(|| anyhow!("{} does not exist (the list has {len})", render(&parts[..=at])))?;
            if last {
                *child = value;
                return Ok(());
            }
            set_in(child, parts, at + 1, value)
        }
    }
}

fn render(parts: &[Part]) -> String {
    let mut s = String::new();
    for p in parts {
        match p {
            Part::Key(k) if s.is_empty() => s.push_str(k),
            Part::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Part::Index(n) => s.push_str(&format!("[{n}]")),
        }
    }
    s
}
