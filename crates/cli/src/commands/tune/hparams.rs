//! The study in TensorBoard's HParams tab: `tensorboard --logdir <study>` shows the
//! experiment (the space, and the validation scalars as its metrics) from
//! `<study>/events.out.tfevents.*.hparams.cnnlab`, and every trial that trained as a
//! session from `<study>/trial-<k>/events.out.tfevents.*.hparams.cnnlab`, its metrics
//! read from the trial's own scalars (`trial-<k>/tb`, the metric group `tb`). A
//! complete trial ends as a success, a failed one as a failure, a pruned one as
//! unknown once the study is over (until then a paused trial may be promoted, and
//! shows as running).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use cnnlab_cli::tune::{Dist, Study, TrialState, TuneConfig, Value};
use cnnlab_train::{EventFile, HParamDomain, HParamValue, HParamsExperiment, HParamsSession, SessionStatus};

/// The validation scalars (the trials' TensorBoard tags) the tab shows, the study's
/// metric first.
fn metric_tags(t: &TuneConfig) -> Vec<String> {
    let first = match t.metric {
        cnnlab_cli::tune::Metric::ValAcc => "accuracy/val",
        cnnlab_cli::tune::Metric::ValF1Macro => "f1_macro/val",
        cnnlab_cli::tune::Metric::ValLoss => "loss/val",
    };
    let mut tags = vec![first.to_owned()];
    for tag in ["accuracy/val", "f1_macro/val", "loss/val"] {
        if tag != first {
            tags.push(tag.to_owned());
        }
    }
    tags
}

fn value_of(v: &toml::Value) -> HParamValue {
    match v {
        toml::Value::Integer(i) => HParamValue::Number(*i as f64),
        toml::Value::Float(x) => HParamValue::Number(*x),
        toml::Value::Boolean(b) => HParamValue::Bool(*b),
        toml::Value::String(s) => HParamValue::Text(s.clone()),
        other => HParamValue::Text(other.to_string()),
    }
}

fn hparam(v: &Value) -> HParamValue {
    match v {
        Value::Float(x) => HParamValue::Number(*x),
        Value::Int(i) => HParamValue::Number(*i as f64),
        Value::Choice(_, v) => value_of(v),
    }
}

fn domain(d: &Dist) -> HParamDomain {
    match d {
        Dist::Uniform { low, high } | Dist::LogUniform { low, high } => {
            HParamDomain::Interval { min: *low, max: *high }
        }
        Dist::Int { low, high } => HParamDomain::Interval { min: *low as f64, max: *high as f64 },
        Dist::Choice(values) => HParamDomain::Discrete(values.iter().map(value_of).collect()),
    }
}

/// Writes the experiment (once per study) and every trial's session. `over`: the study
/// has ended, so a pruned trial will not be promoted again.
pub(super) fn write(dir: &Path, tune: &TuneConfig, study: &Study, over: bool) -> anyhow::Result<()> {
    if cnnlab_train::hparams_file(dir).is_none() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs() as f64);
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        let experiment = HParamsExperiment {
            description: format!(
                "cnnlab tune: {} ({:?}) over {} keys",
                tune.metric.name(),
                tune.metric.direction(),
                tune.space.len()
            ),
            name,
            time_created: now,
            hparams: tune.space.iter().map(|(k, d)| (k.clone(), domain(d))).collect(),
            metrics: metric_tags(tune).into_iter().map(|tag| ("tb".to_owned(), tag)).collect(),
        };
        cnnlab_train::write_hparams_experiment(dir, &experiment)?;
    }
    for (k, trial) in study.trials.iter().enumerate() {
        let run = dir.join(format!("trial-{k}"));
        let tb = run.join(cnnlab_run::files::TB);
        // A trial that never trained (refused by the checks) has no scalars to show.
        if !tb.is_dir() {
            continue;
        }
        let start = EventFile::open(&tb)?.start() as f64;
        let end = start + trial.seconds;
        let end = match trial.record.state {
            TrialState::Complete => Some((SessionStatus::Success, end)),
            TrialState::Failed => Some((SessionStatus::Failure, end)),
            TrialState::Pruned if over => Some((SessionStatus::Unknown, end)),
            TrialState::Pruned | TrialState::Running => None,
        };
        let hparams = trial.params.iter().map(|(k, v)| (k.clone(), hparam(v))).collect();
        cnnlab_train::write_hparams_session(&run, &HParamsSession { hparams, start, end })?;
    }
    Ok(())
}
