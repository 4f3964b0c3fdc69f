//! After every epoch: reduce-on-plateau, `last.safetensors`, `best.safetensors` when
//! `train.monitor` improved, and early stopping, as one [`end_epoch`] that says whether
//! to go on; and [`end_training`], the step every run takes once training is over.

use crate::checkpoint::WatchState;
use crate::config::TrainConfig;
use crate::error::Result;
use crate::learner::Learner;
use crate::run_dir::RunFiles;
use cnnlab_run::{files, EpochRecord, RunDir};

/// What the loop does after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Continue,
    /// Early stopping: the monitored metric stopped improving.
    Stop,
}

/// Updates `state` with the epoch's `record` and saves the checkpoints it calls for.
pub(crate) fn end_epoch(
    cfg: &TrainConfig,
    run: &RunDir,
    learner: &Learner,
    state: &mut WatchState,
    record: &EpochRecord,
) -> Result<Control> {
    if let Some(metric) = cfg.schedule.plateau_metric() {
        cfg.schedule.end_epoch(&mut state.plateau, metric.of(record));
    }
    run.save_vars(files::LAST, &learner.vs)?;
    let value = cfg.monitor.of(record);
    let min_delta = cfg.early_stopping.map_or(0.0, |e| e.min_delta);
    if cfg.monitor.improves(value, state.best, min_delta) {
        state.best = Some(value);
        state.since_best = 0;
        run.save_vars(files::BEST, &learner.vs)?;
    } else {
        state.since_best += 1;
    }
    match cfg.early_stopping {
        Some(es) if state.since_best >= es.patience => {
            tracing::info!(
                "early stopping after epoch {}: {} did not improve for {} epochs (best {:.4})",
                record.epoch,
                cfg.monitor.name(),
                es.patience,
                state.best.unwrap_or(f64::NAN)
            );
            Ok(Control::Stop)
        }
        _ => Ok(Control::Continue),
    }
}

/// Training is over, whichever way it ended: the model takes lookahead's averaged
/// weights (or `train.ema`'s average) and `last.safetensors` holds them. The last scheduled epoch takes them
/// before its evaluation (so its row in `history.csv` scores them); a run that early
/// stopping ended takes them here, after its last evaluation.
pub(crate) fn end_training(run: &RunDir, learner: &mut Learner, already_averaged: bool) -> Result<()> {
    if (learner.lookahead.is_some() || learner.ema.is_some()) && !already_averaged {
        learner.finish();
        run.save_vars(files::LAST, &learner.vs)?;
    }
    Ok(())
}
