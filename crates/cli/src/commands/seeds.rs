//! `[train] seeds`: a set of runs of one experiment, one per seed (`seed-<k>/`), kept,
//! resumed or trained so that the same command picks up where a set stopped, and
//! with `ensemble = true` their averaged test results.

use std::path::Path;

use cnnlab_train::{files, RunDir, RunState};

use super::train::TrainRequest;
use crate::checks;
use crate::exit::Outcome;
use crate::process::close_run_log;
use cnnlab_cli::experiment::Experiment;

/// The experiment one run folder trains: the config with this command's overrides
/// (`--seed`, `--epochs`, `--quick`) applied, and one seed. What its `config.toml` holds.
pub(crate) fn one_run(mut exp: Experiment, req: &TrainRequest) -> anyhow::Result<Experiment> {
    if let Some(seed) = req.seed {
        exp.train.seed = seed;
    }
    // A run folder holds one seed; its config says which.
    exp.train.seeds.clear();
    exp.train.ensemble = false;
    if let Some(epochs) = req.epochs {
        anyhow::ensure!(epochs > 0, "--epochs must be at least 1");
        exp.train.epochs = epochs;
    }
    if req.quick {
        exp.train.epochs = 1;
        exp.data.max_test = Some(exp.data.max_test.unwrap_or(500).min(500));
    }
    Ok(exp)
}

/// A seed of a set that `train_seeds` would keep or resume must have been trained
/// with the recipe of this command (the same config but for `[target]`, and the same
/// `--max-batches`): otherwise the set's mean and interval would mix two recipes.
fn check_same_recipe(dir: &Path, wanted: &Experiment, req: &TrainRequest, finished: bool) -> anyhow::Result<()> {
    let run = RunDir::new(dir);
    let saved = checks::load(&run.file(files::CONFIG))?;
    let mut differ: Vec<String> =
        cnnlab_cli::experiment::differences(&saved, wanted).into_iter().filter(|d| !d.starts_with("target")).collect();
    let stored = run.read_options()?.max_batches;
    let asked = req.asked_max_batches();
    // (An unfinished seed resumed without --max-batches keeps its own.)
    if stored != asked && (finished || asked.is_some()) {
        let show = |m: Option<usize>| m.map_or_else(|| "(unset)".to_owned(), |m| m.to_string());
        differ.push(format!("--max-batches: {} vs {}", show(stored), show(asked)));
    }
    anyhow::ensure!(
        differ.is_empty(),
        "{} was trained with another recipe than {} asks ({}; the run's value first): pass --force to train the \
         set's seeds again, or --out another folder",
        dir.display(),
        req.config.display(),
        differ.join(", ")
    );
    Ok(())
}

/// `[train] seeds`: one run per seed in `out/seed-<k>/`, one after another. A finished
/// seed is kept (unless --force), an unfinished one resumed, so the same command picks
/// up where an interrupted set stopped; either must have been trained with this
/// command's recipe. With `[train] ensemble`, then the ensemble's test results in `out/`.
pub(crate) fn train_seeds(req: &TrainRequest, exp: &Experiment, quiet: bool) -> Outcome {
    let out = &req.out;
    // Every kept seed is checked before anything is trained or removed.
    for &k in &exp.train.seeds {
        let dir = out.join(cnnlab_cli::compare::seed_dir_name(k));
        let one = TrainRequest { seed: Some(k), ..req.clone() };
        match RunDir::new(&dir).state()? {
            RunState::Empty => {}
            _ if req.force => {}
            state => {
                let finished = matches!(state, RunState::Finished { .. });
                check_same_recipe(&dir, &one_run(exp.clone(), &one)?, req, finished)?;
            }
        }
    }
    if exp.train.ensemble {
        // Results of an earlier set go first: they must not pass for this one's.
        RunDir::new(out).clear_test_results()?;
    }
    for &k in &exp.train.seeds {
        let dir = out.join(cnnlab_cli::compare::seed_dir_name(k));
        let mut one = TrainRequest { seed: Some(k), out: dir.clone(), ..req.clone() };
        match RunDir::new(&dir).state()? {
            RunState::Finished { accuracy, .. } if !req.force => {
                tracing::info!("seed {k}: finished earlier (test accuracy {accuracy:.4}), kept");
                continue;
            }
            RunState::Unfinished { .. } if !req.force => {
                tracing::info!("seed {k}: resuming {}", dir.display());
                let config = RunDir::new(&dir).file(files::CONFIG);
                one = TrainRequest { resume: true, config, epochs: None, ..one };
            }
            _ => tracing::info!("seed {k}: training into {}", dir.display()),
        }
        super::train::run(&one, quiet).map_err(|e| e.context(format!("seed {k} ({})", out.display())))?;
        close_run_log();
    }
    if exp.train.ensemble {
        // The ensemble's config is the set's with this command's --epochs / --quick,
        // as each seed's is (the report reads its epochs there).
        let mut set = exp.clone();
        let trained = one_run(exp.clone(), req)?;
        (set.train.epochs, set.data.max_test) = (trained.train.epochs, trained.data.max_test);
        let metrics = crate::ensemble::write_results(out, &set)?;
        tracing::info!(
            "ensemble of {} seeds: test accuracy {:.4}, macro-F1 {:.4}, {:.1} min of training; run folder {}",
            exp.train.seeds.len(),
            metrics.report.accuracy,
            metrics.report.f1_macro,
            metrics.train_seconds / 60.0,
            out.display()
        );
    }
    Ok(())
}
