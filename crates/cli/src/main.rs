//! `cnnlab`: train and evaluate convolutional image classifiers from experiment files.
//!
//! Exit codes: 0 success, 1 error, 2 bad command line, 3 the config's dataset is not
//! on disk (so `cargo xtask train-all` can skip it with the reason), 4 the run folder
//! is being trained by another process (its `.lock`), 5 with `--if-unfinished` the run
//! has finished already, 128 + N stopped by signal N
//! after saving a resumable checkpoint (130 Ctrl-C, 138 SIGUSR1, 143 SIGTERM).

mod ensemble;
mod experiment;
mod explain_cmd;
mod lr_find_cmd;
mod predict_cmd;
mod report;
mod signals;
mod weights;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use cnnlab_cli::args::{Cli, Command, DataCommand, TrainArgs};
use cnnlab_cli::{data_stats, inspect, metrics_cmd, plots};
use cnnlab_train::{files, train, RunDir, RunFiles, RunOptions, RunState};

use crate::experiment::{default_run_dir, Experiment};

const EXIT_DATASET_MISSING: u8 = 3;
/// Another process holds the run folder's lock.
const EXIT_BUSY: u8 = 4;
/// `train --if-unfinished` found the run finished.
const EXIT_FINISHED: u8 = 5;

/// `train --if-unfinished`: the run has finished (another process finished it).
#[derive(Debug)]
struct FinishedAlready(String);

impl std::fmt::Display for FinishedAlready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: finished already, nothing to do", self.0)
    }
}

impl std::error::Error for FinishedAlready {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Train(_) | Command::LrFind { .. }) {
        cnnlab_cli::quit_quietly_on_broken_pipe();
    }
    init_logging(cli.verbose, cli.quiet);
    keep_freed_memory();
    use_thread_budget(cli.threads);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.chain().any(|e| matches!(e.downcast_ref(), Some(cnnlab_train::Error::Interrupted { .. }))) => {
            eprintln!("{err:#}");
            ExitCode::from(signals::exit_code())
        }
        Err(err) if err.downcast_ref::<FinishedAlready>().is_some() => {
            eprintln!("{err:#}");
            ExitCode::from(EXIT_FINISHED)
        }
        Err(err) if err.chain().any(|e| matches!(e.downcast_ref(), Some(cnnlab_run::Error::Locked { .. }))) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_BUSY)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            let missing = err.chain().any(|e| {
                matches!(e.downcast_ref::<cnnlab_data::Error>(), Some(cnnlab_data::Error::NotFound { .. }))
                    || e.downcast_ref::<weights::WeightsMissing>().is_some()
            });
            ExitCode::from(if missing { EXIT_DATASET_MISSING } else { 1 })
        }
    }
}

/// Sizes libtorch's intra-op pool and rayon's pool (JPEG decoding, augmentation) to
/// one budget (see `cnnlab_cli::threads`).
fn use_thread_budget(flag: Option<usize>) {
    let budget = cnnlab_cli::threads::thread_budget(flag, |k| std::env::var(k).ok());
    cnnlab_models::set_torch_threads(budget.threads);
    if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(budget.threads).build_global() {
        tracing::debug!("rayon's pool was sized already: {e}");
    }
    tracing::debug!("{} CPU threads (from {})", budget.threads, budget.source);
}

/// Makes glibc's malloc keep freed memory for reuse instead of handing every large
/// block back to the kernel. libtorch's CPU tensors come from `posix_memalign`; by
/// default each one over 32 MB (an activation of a batch of 512 at 56 x 32 x 32, or of
/// 32 images at 224 x 224) is a fresh `mmap`, so every training step page-faults and
/// zeroes gigabytes anew (measured: 67,000 faults/s, 12% of the CPU in the kernel while
/// training cpu90). With `mmap` off and trimming raised, those blocks are recycled from
/// the heap; the process keeps its peak footprint, as PyTorch's caching allocators do.
/// Setting `MALLOC_MMAP_MAX_` or `MALLOC_TRIM_THRESHOLD_` in the environment keeps
/// glibc's own choice.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_MAX_").is_none() && std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: mallopt only sets allocator parameters; called before any training
        // thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}

fn init_logging(verbose: bool, quiet: bool) {
    let default = if quiet {
        "warn"
    } else if verbose {
        "debug"
    } else {
        "info"
    };
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let terminal = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // Every run also keeps its own log (with timestamps), whatever -q says.
    let level = if verbose { tracing::Level::DEBUG } else { tracing::Level::INFO };
    let run_log = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false)
        .with_writer(|| RunLog)
        .with_filter(tracing_subscriber::filter::LevelFilter::from_level(level));
    tracing_subscriber::registry().with(terminal).with(run_log).init();
}

/// `<run>/train.log`, once `cnnlab train` knows the run folder.
static RUN_LOG: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

struct RunLog;

impl std::io::Write for RunLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Starts appending log lines to `path` (a resumed run continues its log).
fn open_run_log(path: &std::path::Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    *RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(())
}

/// Stops writing to the run's log (before its folder is removed).
fn close_run_log() {
    *RUN_LOG.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Train(args) => train_command(args, cli.quiet),
        Command::Pretrained { backbone, weights, out, data_dir } => {
            weights::imagenet_run(backbone, weights.as_deref().unwrap_or(backbone), out, data_dir)
        }
        Command::Metrics { file, json } => metrics_cmd::run(file, *json),
        Command::Compare { a, b, metric, resamples, seed, json } => {
            let boot = cnnlab_metrics::stats::Bootstrap { resamples: *resamples, seed: *seed, ..Default::default() };
            cnnlab_cli::compare::run(a, b, metric, &boot, *json)
        }
        Command::Status { runs, json } => cnnlab_cli::status::run(runs, *json),
        Command::Info { json } => info_command(*json),
        Command::Report { runs, comparisons } => {
            let n = report::write_report(runs, comparisons)?;
            let what = report::finished_runs(n);
            println!("{what}: {} and {}", runs.join("REPORT.md").display(), runs.join("report.html").display());
            Ok(())
        }
        Command::Summary { config, classes, data_dir } => predict_cmd::summary_command(config, data_dir, *classes),
        Command::Predict { run, inputs, top, submission, tta, best, last: _ } => {
            predict_cmd::predict_command(predict_cmd::PredictArgs {
                run,
                inputs,
                top: *top,
                submission: submission.as_deref(),
                tta: tta.as_deref().map(tta_from_name),
                best: *best,
            })
        }
        Command::Evaluate { run, dir, tta, best, out, json } => {
            predict_cmd::evaluate_command(predict_cmd::EvaluateArgs {
                run,
                dir,
                tta: tta.as_deref().map(tta_from_name),
                best: *best,
                out: out.as_deref(),
                json: *json,
                quiet: cli.quiet,
            })
        }
        Command::Explain { run, images, layer, class, out } => explain_cmd::explain_command(explain_cmd::ExplainArgs {
            run,
            images,
            layer: *layer,
            class: class.as_deref(),
            out: out.as_deref(),
        }),
        Command::LrFind { config, start, end, steps, out, data_dir } => {
            lr_find_cmd::lr_find_command(lr_find_cmd::LrFindArgs {
                config,
                start: *start,
                end: *end,
                steps: *steps,
                out: out.as_deref(),
                data_dir,
                quiet: cli.quiet,
            })
        }
        Command::Data(DataCommand::Stats { dir, json, plot }) => data_stats::stats(dir, *json, plot.as_deref()),
        Command::Data(DataCommand::Export { config, out, data_dir }) => {
            export_command(config, data_dir, out, cli.quiet)
        }
    }
}

/// `cnnlab info`: libtorch's view of the machine.
fn info_command(json: bool) -> Result<()> {
    let info = cnnlab_models::torch_info();
    if json {
        println!("{}", serde_json::to_string(&info)?);
        return Ok(());
    }
    let version = |v: Option<i64>, unit: i64| match v {
        Some(v) => format!("{}.{}.{}", v / (unit * 100), v / unit % 100, v % unit),
        None => "-".to_owned(),
    };
    println!("cnnlab     {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch   {}", info.libtorch);
    println!("threads    {}", info.threads);
    println!("cuda       {}", if info.cuda_available { "available" } else { "not available" });
    println!("cuda rt    {}", version(info.cuda_runtime, 10));
    println!("cudnn      {}", version(info.cudnn, 100));
    for (i, name) in info.devices.iter().enumerate() {
        println!("cuda:{i}     {name}");
    }
    Ok(())
}

fn train_command(args: &TrainArgs, quiet: bool) -> Result<()> {
    let (config, out_dir) = match (&args.resume, &args.config) {
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
    let exp = Experiment::load(&config)?;
    // (An ensemble's folder has the set's config: `--resume` of it resumes the set.)
    if !exp.train.seeds.is_empty() && args.seed.is_none() && (args.resume.is_none() || exp.train.ensemble) {
        let set = TrainArgs { resume: None, config: Some(config.clone()), out: Some(out_dir.clone()), ..args.clone() };
        return train_seeds(&set, &exp, &config, &out_dir, quiet);
    }
    let exp = one_run(exp, args)?;
    let resume = args.resume.is_some();
    let run = RunDir::new(&out_dir);
    let created = !out_dir.exists();
    let _lock = run.lock()?;
    // (`--resume --epochs N` trains a finished run on: not "nothing to do".)
    let extends = resume && args.epochs.is_some();
    if args.if_unfinished && !extends && matches!(run.state()?, RunState::Finished { .. }) {
        return Err(FinishedAlready(out_dir.display().to_string()).into());
    }
    if !resume {
        refuse_to_replace(&run, args.force)?;
    } else if !run.has(files::RESUME) {
        tracing::warn!("{} has no {}: starting from epoch 1", out_dir.display(), files::RESUME);
    } else if let Some(epochs) = args.epochs {
        extend(&run, epochs)?;
    }
    // Options that change what is trained and are not in the config: a resumed run
    // keeps its own unless this command names them.
    let asked = args.max_batches.or(args.quick.then_some(5));
    let max_batches = match (resume, asked, run.read_options()?.max_batches) {
        (true, None, stored) => stored,
        (true, Some(n), stored) if stored != Some(n) => {
            tracing::warn!(
                "--max-batches {n}: {} trained its first epochs with {}",
                out_dir.display(),
                stored.map_or_else(|| "whole epochs".into(), |m| format!("--max-batches {m}"))
            );
            Some(n)
        }
        (_, asked, _) => asked,
    };
    open_run_log(&run.file(files::LOG))?;
    for warning in exp.warnings() {
        tracing::warn!("{}: {warning}", config.display());
    }
    tracing::info!("cnnlab {} {}: run folder {}", env!("CARGO_PKG_VERSION"), config.display(), out_dir.display());
    // Pretrained weights to a .safetensors file the trainer loads (the saved config
    // keeps what the user wrote).
    let mut model = exp.model.clone();
    let config_dir = config.parent().unwrap_or(Path::new("."));
    let resolved = match &exp.model.pretrained {
        Some(p) => weights::resolve(p, config_dir, &args.data_dir, &out_dir).map(Some),
        None => Ok(None),
    };
    let loaded = resolved.and_then(|path| {
        model.pretrained = path.map(|p| p.display().to_string());
        load_data(&exp, &args.data_dir, quiet)
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
    write_run_inputs(&run, &exp, &splits, resume && args.epochs.is_none())?;
    run.write_json(files::OPTIONS, &cnnlab_train::StoredOptions { max_batches })?;

    // Ctrl-C, SIGTERM or SIGUSR1 asks the trainer to stop after the current step and
    // save a resumable checkpoint; a second signal exits at once.
    let interrupt = signals::interrupt_flag()?;
    let opts = RunOptions { out_dir: out_dir.clone(), quiet, resume, interrupt: Some(interrupt), max_batches };
    let metrics = match train(&splits, &exp.data.imbalance, &exp.augment.ops, &model, &exp.train, &opts) {
        Err(e @ cnnlab_train::Error::Interrupted { .. }) => {
            if args.requeue || exp.train.requeue_on_signal {
                signals::requeue();
            }
            return Err(anyhow::Error::new(e).context(format!(
                "training stopped by {} (resume with: cnnlab train --resume {})",
                signals::received().map_or("a signal", signals::name),
                out_dir.display()
            )));
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
        out_dir.display()
    );
    Ok(())
}

/// The test confusion matrix drawn as `plots/confusion.png` (whose path it returns) and
/// its most confused class pairs as `most_confused.csv`.
pub(crate) fn write_confusion(run: &RunDir, title: &str, classes: &[String], matrix: &[Vec<u64>]) -> Result<PathBuf> {
    let plots_dir = run.file(files::PLOTS);
    std::fs::create_dir_all(&plots_dir).with_context(|| format!("creating {}", plots_dir.display()))?;
    let confusion = plots_dir.join("confusion.png");
    plots::confusion(&confusion, title, classes, matrix)?;
    inspect::write_most_confused(&run.file(files::MOST_CONFUSED), &inspect::most_confused(classes, matrix, 1))?;
    Ok(confusion)
}

/// A finished run, looked into: the test confusion matrix (`plots/confusion.png`), the
/// class pairs most often confused (`most_confused.csv`), the 16 test images with the
/// highest loss (`plots/top_losses.png`, `top_losses.csv`), Grad-CAM of a few test
/// images per class (`plots/gradcam.png`), and the pictures in the run's TensorBoard
/// file beside the per-epoch scalars.
fn inspect_run(run: &RunDir, metrics: &cnnlab_train::FinalMetrics, test: &cnnlab_data::Dataset) -> Result<()> {
    let report = &metrics.report;
    let classes: Vec<String> = report.per_class.iter().map(|c| c.class.clone()).collect();
    let matrix = &report.confusion_matrix;
    if matrix.len() != classes.len() || classes.is_empty() || !run.has(files::HISTORY) {
        return Ok(());
    }
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let confusion = write_confusion(run, "confusion matrix (test)", &classes, matrix)?;
    let mut images = vec![("confusion_matrix/test", read(&confusion)?)];
    let plots_dir = run.file(files::PLOTS);

    let predictions = metrics_cmd::read(&run.file(files::PREDICTIONS))?;
    if predictions.y_true.len() == test.len() && predictions.scores.is_some() {
        let top = inspect::top_losses(&predictions, 16)?;
        inspect::write_top_losses(&run.file(files::TOP_LOSSES), &predictions.classes, &top)?;
        let shape = test.shape;
        let short = |c: usize| predictions.classes[c].chars().take(18).collect::<String>();
        let tiles: Vec<plots::Tile> = top
            .iter()
            .map(|t| plots::Tile {
                pixels: &test.pixels[t.index * shape.len()..(t.index + 1) * shape.len()],
                width: shape.width,
                height: shape.height,
                channels: shape.channels,
                caption: [
                    format!("true: {}", short(t.true_class)),
                    format!("pred: {} {:.2}", short(t.predicted), t.p_predicted),
                ],
            })
            .collect();
        let grid = plots_dir.join("top_losses.png");
        plots::image_grid(&grid, "top losses (test): true class, predicted class and its probability", &tiles, 4)?;
        images.push(("top_losses/test", read(&grid)?));
    }
    // A picture more, not a result: a run that cannot draw it still finished.
    match explain_cmd::gradcam_grid(run, test) {
        Ok(Some(grid)) => images.push(("gradcam/test", read(&grid)?)),
        Ok(None) => {}
        Err(e) => tracing::warn!("no Grad-CAM grid for {}: {e:#}", run.path().display()),
    }
    let named: Vec<(&str, &[u8])> = images.iter().map(|(tag, bytes)| (*tag, bytes.as_slice())).collect();
    run.write_tensorboard(&run.read_history()?, &named)?;
    Ok(())
}

/// The experiment one run folder trains: the config with this command's overrides
/// (`--seed`, `--epochs`, `--quick`) applied, and one seed. What its `config.toml` holds.
fn one_run(mut exp: Experiment, args: &TrainArgs) -> Result<Experiment> {
    if let Some(seed) = args.seed {
        exp.train.seed = seed;
    }
    // A run folder holds one seed; its config says which.
    exp.train.seeds.clear();
    exp.train.ensemble = false;
    if let Some(epochs) = args.epochs {
        anyhow::ensure!(epochs > 0, "--epochs must be at least 1");
        exp.train.epochs = epochs;
    }
    if args.quick {
        exp.train.epochs = 1;
        exp.data.max_test = Some(exp.data.max_test.unwrap_or(500).min(500));
    }
    Ok(exp)
}

/// A seed of a set that `train_seeds` would keep or resume must have been trained
/// with the recipe of this command (the same config but for `[target]`, and the same
/// `--max-batches`): otherwise the set's mean and interval would mix two recipes.
fn check_same_recipe(dir: &Path, config: &Path, wanted: &Experiment, args: &TrainArgs, finished: bool) -> Result<()> {
    let run = RunDir::new(dir);
    let saved = Experiment::load(&run.file(files::CONFIG))?;
    let mut differ: Vec<String> =
        experiment::differences(&saved, wanted).into_iter().filter(|d| !d.starts_with("target")).collect();
    let stored = run.read_options()?.max_batches;
    let asked = args.max_batches.or(args.quick.then_some(5));
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
        config.display(),
        differ.join(", ")
    );
    Ok(())
}

/// `[train] seeds`: one run per seed in `out/seed-<k>/`, one after another. A finished
/// seed is kept (unless --force), an unfinished one resumed, so the same command picks
/// up where an interrupted set stopped; either must have been trained with this
/// command's recipe. With `[train] ensemble`, then the ensemble's test results in `out/`.
fn train_seeds(args: &TrainArgs, exp: &Experiment, config: &Path, out: &Path, quiet: bool) -> Result<()> {
    // Every kept seed is checked before anything is trained or removed.
    for &k in &exp.train.seeds {
        let dir = out.join(cnnlab_cli::compare::seed_dir_name(k));
        let one = TrainArgs { seed: Some(k), ..args.clone() };
        match RunDir::new(&dir).state()? {
            RunState::Empty => {}
            _ if args.force => {}
            state => {
                let finished = matches!(state, RunState::Finished { .. });
                check_same_recipe(&dir, config, &one_run(exp.clone(), &one)?, args, finished)?;
            }
        }
    }
    if exp.train.ensemble {
        // Results of an earlier set go first: they must not pass for this one's.
        RunDir::new(out).clear_test_results()?;
    }
    for &k in &exp.train.seeds {
        let dir = out.join(cnnlab_cli::compare::seed_dir_name(k));
        let mut one = TrainArgs { seed: Some(k), out: Some(dir.clone()), ..args.clone() };
        match RunDir::new(&dir).state()? {
            RunState::Finished { accuracy, .. } if !args.force => {
                tracing::info!("seed {k}: finished earlier (test accuracy {accuracy:.4}), kept");
                continue;
            }
            RunState::Unfinished { .. } if !args.force => {
                tracing::info!("seed {k}: resuming {}", dir.display());
                one = TrainArgs { resume: Some(dir), config: None, epochs: None, ..one };
            }
            _ => tracing::info!("seed {k}: training into {}", dir.display()),
        }
        train_command(&one, quiet).with_context(|| format!("seed {k} ({})", out.display()))?;
        close_run_log();
    }
    if exp.train.ensemble {
        // The ensemble's config is the set's with this command's --epochs / --quick,
        // as each seed's is (the report reads its epochs there).
        let mut set = exp.clone();
        let trained = one_run(exp.clone(), args)?;
        (set.train.epochs, set.data.max_test) = (trained.train.epochs, trained.data.max_test);
        let metrics = ensemble::write_results(out, &set)?;
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

/// `--resume RUN --epochs N`: the run trains on to N epochs; a finished one becomes
/// unfinished again (its old test results go, so they cannot pass for the new ones).
fn extend(run: &RunDir, epochs: usize) -> Result<()> {
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
fn refuse_to_replace(run: &RunDir, force: bool) -> Result<()> {
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

fn load_data(exp: &Experiment, data_dir: &std::path::Path, quiet: bool) -> Result<cnnlab_data::Splits> {
    let started = std::time::Instant::now();
    let splits = cnnlab_data::load_with_progress(&exp.data, data_dir, quiet)?;
    if let Some(summary) = splits.report.summary() {
        tracing::warn!("{summary}");
    }
    for line in &splits.report.cache {
        tracing::info!("decode cache: {line}");
    }
    // No test images at all: one line saying why, before any per-class warning.
    if splits.test.is_empty() && !splits.train.is_empty() {
        let fewest = splits.train.class_counts().into_iter().min().unwrap_or(0);
        anyhow::bail!(
            "{}: the test split holds no images ({} training images in {} classes, the smallest with {fewest}: \
             too few to hold out data.test_fraction = {} of each class)",
            exp.data.dataset,
            splits.train.len(),
            splits.train.num_classes(),
            exp.data.test_fraction
        );
    }
    // A class missing from a split still counts in its macro averages (as 0): say so,
    // naming the first few.
    for (name, split) in [("test", Some(&splits.test)), ("validation", splits.val.as_ref())] {
        let Some(split) = split else { continue };
        let empty: Vec<&str> = split
            .class_counts()
            .iter()
            .zip(&split.classes)
            .filter(|(n, _)| **n == 0)
            .map(|(_, c)| c.as_str())
            .collect();
        if !empty.is_empty() {
            let more = if empty.len() > 8 { format!(" and {} more", empty.len() - 8) } else { String::new() };
            tracing::warn!(
                "no {name} images of {} class(es), {}{more}: their {name} F1 is 0 and pulls macro-F1 down",
                empty.len(),
                empty[..empty.len().min(8)].join(", ")
            );
        }
    }
    if !splits.report.filtered_by_size.is_empty() {
        tracing::info!("size filter dropped, per class: {:?}", splits.report.filtered_by_size);
    }
    tracing::info!(
        "loaded {}: {} train / {} val / {} test images in {:.1?} ({} MB in memory)",
        exp.data.dataset,
        splits.train.len(),
        splits.val.as_ref().map_or(0, |v| v.len()),
        splits.test.len(),
        started.elapsed(),
        [Some(&splits.train), splits.val.as_ref(), Some(&splits.test)]
            .into_iter()
            .flatten()
            .map(|d| d.pixels.len())
            .sum::<usize>()
            / 1_000_000
    );
    Ok(splits)
}

/// What a run folder keeps about its inputs: the resolved config (a resumed run keeps
/// its own, unless --epochs extends it), classes, shape, class counts, the exact split and the skipped files.
fn write_run_inputs(run: &RunDir, exp: &Experiment, splits: &cnnlab_data::Splits, keep_config: bool) -> Result<()> {
    if !keep_config {
        let text = toml::to_string(exp).context("serializing the resolved config")?;
        run.write_bytes(files::CONFIG, text.as_bytes())?;
    }
    run.write_json(files::CLASSES, &splits.train.classes)?;
    run.write_json(files::SHAPE, &splits.train.shape)?;
    let counts: Vec<(&String, usize)> = splits.train.classes.iter().zip(splits.train.class_counts()).collect();
    run.write_json(files::CLASS_COUNTS, &counts)?;
    if let Some(split) = &splits.files {
        // The exact split, so it can be audited and reproduced.
        run.write_json(files::SPLIT, split)?;
    }
    if !splits.report.skipped.is_empty() {
        run.write_json(files::SKIPPED, &splits.report.skipped)?;
    }
    Ok(())
}

/// Writes the config's dataset as `out/train/<class>/*.png` and `out/test/<class>/*.png`.
fn export_command(config: &Path, data_dir: &Path, out: &Path, quiet: bool) -> Result<()> {
    let exp = Experiment::load(config)?;
    let splits = cnnlab_data::load_with_progress(&exp.data, data_dir, quiet)?;
    let mut written = 0;
    for (name, split) in [("train", Some(&splits.train)), ("val", splits.val.as_ref()), ("test", Some(&splits.test))] {
        if let Some(split) = split {
            written += cnnlab_data::export_image_folder(split, &out.join(name))?;
        }
    }
    println!("wrote {written} images to {}", out.display());
    Ok(())
}

/// A `--tta` value, which clap has checked against `TTA_NAMES`.
fn tta_from_name(name: &str) -> cnnlab_train::Tta {
    cnnlab_train::Tta::from_name(name).unwrap_or_else(|| unreachable!("clap accepts only TTA_NAMES"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--help` describes every command and every argument of every command.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if !["help", "version"].contains(&id) && arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (the command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        use clap::CommandFactory;
        let mut missing = Vec::new();
        walk(&Cli::command(), "cnnlab", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }

    #[test]
    fn the_light_binarys_tta_names_are_trains() {
        assert_eq!(cnnlab_cli::args::TTA_NAMES, cnnlab_train::Tta::ALL.map(|t| t.name()));
    }
}
