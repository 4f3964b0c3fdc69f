//! `cnnlab train`: one run folder, or a seed set (`[train] seeds`, see `seeds.rs`).

use std::path::{Path, PathBuf};

use cnnlab_cli::args::TrainArgs;
use cnnlab_train::{files, train, RunDir, RunOptions, RunState};

use super::data::{load_data, write_run_inputs};
use super::run_outputs::inspect_run;
use super::seeds::{one_run, train_seeds};
use crate::checks;
use crate::exit::{Failure, Kind, Outcome};
use crate::process::{close_run_log, open_run_log};
use crate::{signals, weights};
use cnnlab_cli::experiment::default_run_dir;

/// What one `cnnlab train` does, whoever asks: the command line, or a seed set for
/// each of its seeds. (Clap's `TrainArgs` allows only the combinations a user may
/// type; a seed set needs others, e.g. a seed's folder resumed from its own config.)
#[derive(Debug, Clone)]
pub(crate) struct TrainRequest {
    /// The experiment file; when resuming, the run folder's own `config.toml`.
    pub(crate) config: PathBuf,
    pub(crate) out: PathBuf,
    pub(crate) resume: bool,
    pub(crate) seed: Option<u64>,
    pub(crate) epochs: Option<usize>,
    pub(crate) quick: bool,
    pub(crate) max_batches: Option<usize>,
    pub(crate) force: bool,
    pub(crate) if_unfinished: bool,
    pub(crate) requeue: bool,
    pub(crate) data_dir: PathBuf,
    /// Stop after this epoch with a resumable checkpoint (`cnnlab tune`'s rungs).
    pub(crate) stop_after: Option<usize>,
    /// The caller holds the run folder's lock already (`cnnlab tune` holds a trial's
    /// across its segments).
    pub(crate) lock_held: bool,
}

impl TrainRequest {
    fn from_args(args: &TrainArgs) -> anyhow::Result<Self> {
        let (config, out) = match (&args.resume, &args.config) {
            (Some(run), _) => {
                let config = RunDir::new(run).file(files::CONFIG);
                anyhow::ensure!(
                    config.exists(),
                    "{} is missing: is {} a cnnlab run folder?",
                    config.display(),
                    run.display()
                );
                (config, run.clone())
            }
            (None, Some(config)) => (config.clone(), args.out.clone().unwrap_or_else(|| default_run_dir(config))),
            (None, None) => anyhow::bail!("give an experiment file or --resume RUN_DIR"),
        };
        Ok(TrainRequest {
            config,
            out,
            resume: args.resume.is_some(),
            seed: args.seed,
            epochs: args.epochs,
            quick: args.quick,
            max_batches: args.max_batches,
            force: args.force,
            if_unfinished: args.if_unfinished,
            requeue: args.requeue,
            data_dir: args.data_dir.clone(),
            stop_after: None,
            lock_held: false,
        })
    }

    /// `--max-batches`, or `--quick`'s 5.
    pub(crate) fn asked_max_batches(&self) -> Option<usize> {
        self.max_batches.or(self.quick.then_some(5))
    }
}

pub(crate) fn command(args: &TrainArgs, quiet: bool) -> Outcome {
    run(&TrainRequest::from_args(args)?, quiet)
}

/// Trains what `req` asks: a seed set, or one run folder.
pub(crate) fn run(req: &TrainRequest, quiet: bool) -> Outcome {
    let exp = checks::load(&req.config)?;
    // (An ensemble's folder has the set's config: `--resume` of it resumes the set.)
    if !exp.train.seeds.is_empty() && req.seed.is_none() && (!req.resume || exp.train.ensemble) {
        return train_seeds(&TrainRequest { resume: false, ..req.clone() }, &exp, quiet);
    }
    let exp = one_run(exp, req)?;
    let run = RunDir::new(&req.out);
    let created = !req.out.exists();
    let _lock = match req.lock_held {
        true => None,
        false => Some(run.lock().map_err(|e| {
            let busy = matches!(e, cnnlab_run::Error::Locked { .. });
            Failure::new(if busy { Kind::Busy } else { Kind::Error }, e)
        })?),
    };
    take_folder(&run, req)?;
    let max_batches = max_batches(&run, req)?;
    open_run_log(&run.file(files::LOG))?;
    for warning in checks::warnings(&exp) {
        tracing::warn!("{}: {warning}", req.config.display());
    }
    tracing::info!("cnnlab {} {}: run folder {}", env!("CARGO_PKG_VERSION"), req.config.display(), req.out.display());
    // Pretrained weights to a .safetensors file the trainer loads (the saved config
    // keeps what the user wrote).
    let mut model = exp.model.clone();
    let config_dir = req.config.parent().unwrap_or(Path::new("."));
    let resolved = match &exp.model.pretrained {
        Some(p) => weights::resolve(p, config_dir, &req.data_dir, &req.out).map(Some),
        None => Ok(None),
    };
    let loaded = resolved.and_then(|path| {
        model.pretrained = path.map(|p| p.display().to_string());
        load_data(&exp, &req.data_dir, quiet)
    });
    let splits = match loaded {
        Ok(splits) => splits,
        Err(e) => {
            // Nothing was trained: a folder this command made goes away again.
            close_run_log();
            run.remove_if_unused(created);
            return Err(e);
        }
    };
    write_run_inputs(&run, &exp, &splits, req.resume && req.epochs.is_none())?;
    run.write_json(files::OPTIONS, &cnnlab_train::StoredOptions { max_batches })?;

    // Ctrl-C, SIGTERM or SIGUSR1 asks the trainer to stop after the current step and
    // save a resumable checkpoint; a second signal exits at once.
    let interrupt = signals::interrupt_flag()?;
    let opts = RunOptions {
        out_dir: req.out.clone(),
        quiet,
        resume: req.resume,
        interrupt: Some(interrupt),
        max_batches,
        stop_after_epoch: req.stop_after,
    };
    let metrics = match train(&splits, &exp.data.imbalance, &exp.augment.ops, &model, &exp.train, &opts) {
        Err(e @ cnnlab_train::Error::Interrupted { .. }) => {
            if req.requeue || exp.train.requeue_on_signal {
                signals::requeue();
            }
            let how = format!(
                "training stopped by {} (resume with: cnnlab train --resume {})",
                signals::received().map_or("a signal", signals::name),
                req.out.display()
            );
            return Err(Failure::new(Kind::Stopped, anyhow::Error::new(e).context(how)));
        }
        Err(e) => {
            // A run that failed before its first epoch leaves no half-made folder.
            close_run_log();
            run.remove_if_untrained(created);
            return Err(e.into());
        }
        Ok(metrics) => metrics,
    };
    inspect_run(&run, &metrics, &splits.test)?;
    tracing::info!(
        "test accuracy {:.4}, loss {:.4} on {} images; run folder {}",
        metrics.report.accuracy,
        metrics.loss,
        metrics.n_samples,
        req.out.display()
    );
    Ok(())
}

/// What the folder holds decides whether this command may train into it: a finished
/// run with `--if-unfinished` is nothing to do; a run is not replaced without
/// `--force`; `--resume --epochs N` trains a finished run on.
fn take_folder(run: &RunDir, req: &TrainRequest) -> Outcome {
    // (`--resume --epochs N` trains a finished run on: not "nothing to do".)
    let extends = req.resume && req.epochs.is_some();
    if req.if_unfinished && !extends && matches!(run.state()?, RunState::Finished { .. }) {
        let done = anyhow::anyhow!("{}: finished already, nothing to do", req.out.display());
        return Err(Failure::new(Kind::Finished, done));
    }
    if !req.resume {
        refuse_to_replace(run, req.force)?;
    } else if !run.has(files::RESUME) {
        tracing::warn!("{} has no {}: starting from epoch 1", req.out.display(), files::RESUME);
    } else if let Some(epochs) = req.epochs {
        extend(run, epochs)?;
    }
    Ok(())
}

/// Options that change what is trained and are not in the config: a resumed run
/// keeps its own (`options.json`) unless this command names them.
fn max_batches(run: &RunDir, req: &TrainRequest) -> anyhow::Result<Option<usize>> {
    let asked = req.asked_max_batches();
    Ok(match (req.resume, asked, run.read_options()?.max_batches) {
        (true, None, stored) => stored,
        (true, Some(n), stored) if stored != Some(n) => {
            tracing::warn!(
                "--max-batches {n}: {} trained its first epochs with {}",
                req.out.display(),
                stored.map_or_else(|| "whole epochs".into(), |m| format!("--max-batches {m}"))
            );
            Some(n)
        }
        (_, asked, _) => asked,
    })
}

/// `--resume RUN --epochs N`: the run trains on to N epochs; a finished one becomes
/// unfinished again (its old test results go, so they cannot pass for the new ones).
fn extend(run: &RunDir, epochs: usize) -> anyhow::Result<()> {
    let done = match run.state()? {
        RunState::Finished { epochs, .. } => epochs,
        RunState::Unfinished { epochs_done } => epochs_done,
        RunState::Empty => 0,
    };
    anyhow::ensure!(
        epochs >= done,
        "--epochs {epochs} is fewer than the {done} epochs {} trained",
        run.path().display()
    );
    run.clear_test_results()?;
    Ok(())
}

/// A run folder that already holds a run is not trained into again unless `--force`
/// says so; then the old run's results go first, so that they can never pass for the
/// new run's.
fn refuse_to_replace(run: &RunDir, force: bool) -> anyhow::Result<()> {
    let dir = run.path().display();
    match run.state()? {
        RunState::Empty => Ok(()),
        _ if force => {
            run.clear_results()?;
            Ok(())
        }
        RunState::Finished { accuracy, epochs } => anyhow::bail!(
            "{dir} holds a finished run ({epochs} epochs, test accuracy {accuracy:.4}): pass --force to train it \
             again from scratch, or --out another folder (--resume continues only an unfinished run)"
        ),
        RunState::Unfinished { epochs_done } => anyhow::bail!(
            "{dir} holds an unfinished run ({epochs_done} epochs done): continue it with `cnnlab train --resume \
             {dir}`, or pass --force to start over"
        ),
    }
}
