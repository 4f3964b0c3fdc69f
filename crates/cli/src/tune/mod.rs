//! `cnnlab tune`'s torch-free half: the `[tune]` section, the search space, the
//! samplers, the pruners and the study file. The torch binary's `commands/tune.rs`
//! trains the trials.
//!
//! ```toml
//! extends = "seed3-final.toml"
//! [tune]
//! metric = "val_acc"      # val_f1_macro, val_loss (lower is better)
//! trials = 24             # and/or budget_minutes = 60 (of training time)
//! sampler = "tpe"         # random | sobol | grid | tpe
//! pruner = "asha"         # none | median | asha, or { kind = "asha", min_epochs = 1, reduction = 3 }
//! seed = 0
//! [tune.space]
//! "train.lr" = { log_uniform = [1e-4, 3e-1] }
//! ```

pub mod pruner;
pub mod sampler;
pub mod sobol;
pub mod space;
pub mod study;

use anyhow::{anyhow, bail, Result};

pub use pruner::{Direction, Pruner, TrialRecord, TrialState};
pub use sampler::{Observation, SamplerKind};
pub use space::{Dist, Space, Value};
pub use study::{Event, Study, Trial, STUDY_FILE};

/// The metric a study optimises: a column of the trials' history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    ValAcc,
    ValF1Macro,
    ValLoss,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::ValAcc => "val_acc",
            Metric::ValF1Macro => "val_f1_macro",
            Metric::ValLoss => "val_loss",
        }
    }

    pub fn direction(self) -> Direction {
        Direction::of_metric(self.name())
    }
}

/// `[tune]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneConfig {
    pub metric: Metric,
    pub trials: Option<usize>,
    pub budget_minutes: Option<f64>,
    pub sampler: SamplerKind,
    pub pruner: Pruner,
    pub seed: u64,
    pub space: Space,
    /// `confirm = { top = 2, seeds = 3 }`: the best `top` trials' values and the
    /// untuned experiment each trained over `seeds` seeds, compared by Welch over
    /// seeds with Holm's correction.
    pub confirm: Option<Confirm>,
}

/// `[tune] confirm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Confirm {
    pub top: usize,
    pub seeds: usize,
}

/// The keys `[tune]` takes.
const KEYS: [&str; 8] = ["metric", "trials", "budget_minutes", "sampler", "pruner", "seed", "space", "confirm"];

impl TuneConfig {
    /// Parses the `[tune]` table; errors name the key (`tune.sampler: ...`).
    pub fn parse(table: &toml::Table) -> Result<Self> {
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                bail!("tune.{key}: no such key (the keys are {})", KEYS.join(", "));
            }
        }
        let text = |key: &str, default: &str| -> Result<String> {
            match table.get(key) {
                None => Ok(default.to_owned()),
                Some(toml::Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(anyhow!("tune.{key}: expected a string, found {other}")),
            }
        };
        let metric = match text("metric", "val_acc")?.as_str() {
            "val_acc" => Metric::ValAcc,
            "val_f1_macro" => Metric::ValF1Macro,
            "val_loss" => Metric::ValLoss,
            other => bail!("tune.metric: `{other}` is not val_acc, val_f1_macro or val_loss"),
        };
        let whole = |key: &str| -> Result<Option<u64>> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(*n as u64)),
                Some(other) => Err(anyhow!("tune.{key}: expected a whole number, found {other}")),
            }
        };
        let trials = whole("trials")?.map(|n| n as usize);
        if trials == Some(0) {
            bail!("tune.trials: at least 1");
        }
        let budget_minutes = match table.get("budget_minutes") {
            None => None,
            Some(v) => match v.as_float().or_else(|| v.as_integer().map(|i| i as f64)) {
                Some(m) if m > 0.0 && m.is_finite() => Some(m),
                _ => bail!("tune.budget_minutes: expected a positive number, found {v}"),
            },
        };
        if trials.is_none() && budget_minutes.is_none() {
            bail!("tune: give `trials = N`, `budget_minutes = M`, or both");
        }
        let sampler = match text("sampler", "tpe")?.as_str() {
            "random" => SamplerKind::Random,
            "grid" => SamplerKind::Grid,
            "tpe" => SamplerKind::Tpe,
            "sobol" => SamplerKind::Sobol,
            other => bail!("tune.sampler: `{other}` is not random, sobol, grid or tpe"),
        };
        let pruner = parse_pruner(table.get("pruner"))?;
        let seed = whole("seed")?.unwrap_or(0);
        let space = match table.get("space") {
            Some(toml::Value::Table(t)) => space::parse_space(t)?,
            Some(_) => bail!("tune.space: expected a table of key = {{ distribution }}"),
            None => {
                bail!("tune.space: missing (the keys to tune, e.g. \"train.lr\" = {{ log_uniform = [1e-4, 1e-1] }})")
            }
        };
        let confirm = match table.get("confirm") {
            None => None,
            Some(toml::Value::Table(t)) => {
                if let Some(bad) = t.keys().find(|k| !["top", "seeds"].contains(&k.as_str())) {
                    bail!("tune.confirm.{bad}: no such key (top, seeds)");
                }
                let get = |key: &str, default: i64, least: i64| match t.get(key) {
                    None => Ok(default as usize),
                    Some(toml::Value::Integer(n)) if *n >= least => Ok(*n as usize),
                    Some(other) => {
                        Err(anyhow!("tune.confirm.{key}: expected a whole number of at least {least}, found {other}"))
                    }
                };
                Some(Confirm { top: get("top", 2, 1)?, seeds: get("seeds", 3, 2)? })
            }
            Some(other) => bail!("tune.confirm: expected {{ top = 2, seeds = 3 }}, found {other}"),
        };
        if sampler == SamplerKind::Sobol && space.len() > sobol::MAX_DIMENSIONS {
            bail!("tune.sampler: sobol covers at most {} keys, tune.space has {}", sobol::MAX_DIMENSIONS, space.len());
        }
        Ok(TuneConfig { metric, trials, budget_minutes, sampler, pruner, seed, space, confirm })
    }
}

fn parse_pruner(value: Option<&toml::Value>) -> Result<Pruner> {
    let asha = |min_epochs, reduction| Pruner::SuccessiveHalving { min_epochs, reduction, min_early_stopping_rate: 0 };
    let (kind, table) = match value {
        None => return Ok(Pruner::None),
        Some(toml::Value::String(s)) => (s.as_str(), None),
        Some(toml::Value::Table(t)) => match t.get("kind").and_then(toml::Value::as_str) {
            Some(kind) => (kind, Some(t)),
            None => bail!("tune.pruner.kind: missing (none, median, asha)"),
        },
        Some(other) => bail!("tune.pruner: expected a name or a table, found {other}"),
    };
    let number = |key: &str, default: usize, least: i64| -> Result<usize> {
        match table.and_then(|t| t.get(key)) {
            None => Ok(default),
            Some(toml::Value::Integer(n)) if *n >= least => Ok(*n as usize),
            Some(other) => {
                Err(anyhow!("tune.pruner.{key}: expected a whole number of at least {least}, found {other}"))
            }
        }
    };
    let allowed: &[&str] = match kind {
        "none" => &["kind"],
        "median" => &["kind", "startup_trials", "warmup_epochs"],
        "asha" | "successive_halving" => &["kind", "min_epochs", "reduction"],
        other => bail!("tune.pruner: `{other}` is not none, median or asha"),
    };
    if let Some(bad) = table.and_then(|t| t.keys().find(|k| !allowed.contains(&k.as_str()))) {
        bail!("tune.pruner.{bad}: no such key for {kind} ({})", allowed.join(", "));
    }
    Ok(match kind {
        "none" => Pruner::None,
        "median" => Pruner::Median {
            startup_trials: number("startup_trials", 5, 0)?,
            warmup_epochs: number("warmup_epochs", 0, 0)?,
        },
        _ => {
            let reduction = number("reduction", 3, 2)?;
            asha(number("min_epochs", 1, 1)?, reduction)
        }
    })
}

/// The finished trials as the samplers see them (lower loss is better).
pub fn observations(study: &Study, direction: Direction) -> Vec<Observation> {
    study
        .trials
        .iter()
        .filter(|t| t.record.state != TrialState::Running)
        .map(|t| {
            let complete = t.record.state == TrialState::Complete;
            let raw = if complete { t.value } else { t.record.values.values().next_back().copied() };
            let loss = raw.filter(|v| !v.is_nan()).map(|v| if direction == Direction::Maximize { -v } else { v });
            let loss = if t.record.state == TrialState::Failed { None } else { loss };
            Observation { params: t.params.clone(), loss, complete, epochs: t.record.values.len() }
        })
        .collect()
}

#[cfg(test)]
mod tests;
