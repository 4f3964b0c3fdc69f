//! The resumable state of a run, `resume.safetensors`: the model's variables
//! (`model.*`), the optimizer's moments (`optim.*`), lookahead's slow weights
//! (`lookahead.*`), the weights' average (`ema.*`), fp16's loss scale (`amp.*`) and [`Progress`] as JSON bytes (`progress.json`), in one file so that
//! one rename makes all of it current.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::learner::Learner;
use crate::run_dir::RunFiles;
use crate::schedule::PlateauState;
use cnnlab_run::{files, RunDir, PROGRESS_TENSOR};

/// Where the run stands. Its parts are flattened, so `progress.json` keeps the flat
/// keys of the runs written before the split and those still resume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Progress {
    #[serde(flatten)]
    pub(crate) position: Position,
    #[serde(flatten)]
    pub(crate) tally: EpochTally,
    #[serde(flatten)]
    pub(crate) totals: Totals,
    #[serde(flatten)]
    pub(crate) watch: WatchState,
}

/// The epoch in progress (1-based) and how many of its batches are done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Position {
    pub(crate) epoch: usize,
    pub(crate) batches_done: usize,
}

/// The running sums of the epoch in progress (what its `history.csv` row will say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct EpochTally {
    pub(crate) loss_sum: f64,
    pub(crate) correct: i64,
    pub(crate) seen: usize,
    /// Training seconds of this epoch before an interruption.
    pub(crate) epoch_seconds: f64,
}

/// Over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Totals {
    pub(crate) train_seconds: f64,
    pub(crate) images_seen: usize,
    pub(crate) epochs_run: usize,
}

/// What the monitor keeps between epochs (see `monitor.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WatchState {
    /// Best value of `train.monitor` so far, and epochs since it.
    pub(crate) best: Option<f64>,
    pub(crate) since_best: usize,
    pub(crate) plateau: PlateauState,
    /// Training is over (all epochs, or early stopping); only the test pass is left.
    pub(crate) finished: bool,
}

impl Progress {
    pub(crate) fn start() -> Self {
        Progress { position: Position { epoch: 1, batches_done: 0 }, ..Default::default() }
    }
}

/// The tensor holding [`Progress`] as JSON (cnnlab-run reads it for `status`).
const PROGRESS_KEY: &str = PROGRESS_TENSOR;

/// Writes `resume.safetensors` atomically.
pub(crate) fn save(run: &RunDir, learner: &Learner, progress: &Progress) -> Result<()> {
    let to_cpu = |(k, v): (String, Tensor)| (k, v.to_device(Device::Cpu));
    let mut named: Vec<(String, Tensor)> =
        learner.vs.variables().into_iter().map(|(k, v)| (format!("model.{k}"), v)).map(to_cpu).collect();
    named.extend(learner.opt.state().into_iter().map(to_cpu));
    named.extend(learner.lookahead.as_ref().map(|l| l.state()).unwrap_or_default().into_iter().map(to_cpu));
    named.extend(learner.ema.as_ref().map(|e| e.state()).unwrap_or_default().into_iter().map(to_cpu));
    named.extend(learner.scaler.as_ref().map(|s| s.state()).unwrap_or_default().into_iter().map(to_cpu));
    let json = serde_json::to_vec(progress).expect("plain struct");
    named.push((PROGRESS_KEY.into(), Tensor::from_slice(&json)));
    named.sort_by(|a, b| a.0.cmp(&b.0));
    run.save_tensors(files::RESUME, &named)
}

/// Restores what [`save`] wrote into `learner`; returns the progress.
pub(crate) fn load(run: &RunDir, learner: &mut Learner) -> Result<Progress> {
    let path = run.file(files::RESUME);
    let bad = |reason: String| Error::Checkpoint { path: path.clone(), reason };
    let saved: HashMap<String, Tensor> =
        Tensor::read_safetensors(&path).map_err(|e| bad(crate::run_dir::tch_reason(&e)))?.into_iter().collect();
    let json = saved.get(PROGRESS_KEY).ok_or_else(|| bad("not a cnnlab resume checkpoint".into()))?;
    let bytes = Vec::<u8>::try_from(json)?;
    let progress: Progress = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    tch::no_grad(|| {
        for (name, mut var) in learner.vs.variables() {
            let src = saved
                .get(&format!("model.{name}"))
                .ok_or_else(|| bad(format!("has no `{name}`: was it written by another model config?")))?;
            if src.size() != var.size() {
                return Err(bad(format!("`{name}` is {:?}, the model has {:?}", src.size(), var.size())));
            }
            var.f_copy_(src)?;
        }
        Ok(())
    })?;
    learner.opt.load_state(&saved).map_err(|e| bad(e.to_string()))?;
    if let Some(la) = learner.lookahead.as_mut() {
        la.load(&saved).map_err(|e| bad(e.to_string()))?;
    }
    if let Some(ema) = learner.ema.as_mut() {
        ema.load(&saved).map_err(|e| bad(e.to_string()))?;
    }
    if let Some(scaler) = learner.scaler.as_mut() {
        scaler.load(&saved).map_err(|e| bad(e.to_string()))?;
    }
    Ok(progress)
}

/// Every floating-point variable of `vs` (weights and batch-norm statistics), sorted
/// by name: what lookahead and the weights' average keep a copy of.
pub(crate) fn float_variables(vs: &tch::nn::VarStore) -> (Vec<String>, Vec<Tensor>) {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.is_floating_point()).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter().unzip()
}

/// `tensors` named `<prefix>.<name>` for the resumable checkpoint.
pub(crate) fn prefixed(prefix: &str, names: &[String], tensors: &[Tensor]) -> Vec<(String, Tensor)> {
    names.iter().zip(tensors).map(|(n, t)| (format!("{prefix}.{n}"), t.shallow_clone())).collect()
}

/// Copies `<prefix>.<name>` of `saved` into each of `tensors`; a missing one is named,
/// with `hint`.
pub(crate) fn restore_prefixed(
    saved: &HashMap<String, Tensor>,
    prefix: &str,
    names: &[String],
    tensors: &mut [Tensor],
    hint: &'static str,
) -> Result<()> {
    tch::no_grad(|| {
        for (name, tensor) in names.iter().zip(tensors) {
            let key = format!("{prefix}.{name}");
            let src = saved.get(&key).ok_or(Error::MissingTensor { name: key.clone(), hint })?;
            tensor.f_copy_(src)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `progress.json` as runs wrote it before the split into parts.
    #[test]
    fn reads_the_flat_progress_of_earlier_runs() {
        let old = r#"{"epoch":3,"batches_done":7,"loss_sum":1.5,"correct":40,"seen":64,"epoch_seconds":2.0,
            "train_seconds":9.5,"images_seen":1000,"best":0.8,"since_best":1,
            "plateau":{"best":null,"bad_epochs":0,"scale":1.0},"finished":false,"epochs_run":2}"#;
        let p: Progress = serde_json::from_str(old).unwrap();
        assert_eq!(p.position, Position { epoch: 3, batches_done: 7 });
        assert_eq!((p.tally.seen, p.totals.images_seen, p.totals.epochs_run), (64, 1000, 2));
        assert_eq!((p.watch.best, p.watch.since_best, p.watch.finished), (Some(0.8), 1, false));
        let again: Progress = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(again, p);
    }
}
