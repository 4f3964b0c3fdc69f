//! `cnnlab`: train and evaluate convolutional image classifiers from experiment files.
//!
//! Exit codes: 0 success, 1 error, 2 bad command line, 3 the config's dataset is not
//! on disk (so `cargo xtask train-all` can skip it with the reason).

mod data_cmd;
mod experiment;
mod metrics_cmd;
mod plots;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cnnlab_train::{train, write_json, RunOptions};

use crate::experiment::{default_run_dir, Experiment};

const EXIT_DATASET_MISSING: u8 = 3;

#[derive(Debug, Parser)]
#[command(name = "cnnlab", version, about = "Train and compare CNN image classifiers on libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (debug level); RUST_LOG overrides.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Only warnings and errors, no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train the experiment described by CONFIG and evaluate it on the test split.
    Train(TrainArgs),
    /// Dataset tools.
    #[command(subcommand)]
    Data(DataCommand),
    /// Every classification metric of a predictions CSV (y_true, y_pred, p_<class>...).
    Metrics {
        /// CSV file with a header.
        file: PathBuf,
        /// Print one JSON object instead of the text report.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Per-class counts, imbalance ratio, image sizes and unreadable files of a folder.
    Stats {
        /// An image folder: DIR/<class>/*.jpg.
        dir: PathBuf,
        #[arg(long)]
        json: bool,
        /// Also draw the class distribution as a bar chart (PNG).
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Write the dataset of CONFIG as image folders OUT/{train,val,test}/<class>/*.png.
    Export {
        config: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// Experiment file, e.g. configs/fashion-mnist/seed3-final.toml.
    config: PathBuf,
    /// Override `train.epochs`.
    #[arg(long)]
    epochs: Option<usize>,
    /// Where datasets live.
    #[arg(long, env = "CNNLAB_DATA", default_value = "data")]
    data_dir: PathBuf,
    /// Run folder (default: runs/<config folder>/<config stem>/).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            let missing = err
                .chain()
                .any(|e| matches!(e.downcast_ref::<cnnlab_data::Error>(), Some(cnnlab_data::Error::NotFound { .. })));
            ExitCode::from(if missing { EXIT_DATASET_MISSING } else { 1 })
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Train(args) => train_command(args, cli.quiet),
        Command::Metrics { file, json } => metrics_cmd::run(file, *json),
        Command::Data(DataCommand::Stats { dir, json, plot }) => data_cmd::stats(dir, *json, plot.as_deref()),
        Command::Data(DataCommand::Export { config, out, data_dir }) => {
            data_cmd::export(config, data_dir, out, cli.quiet)
        }
    }
}

fn train_command(args: &TrainArgs, quiet: bool) -> Result<()> {
    let mut exp = Experiment::load(&args.config)?;
    if let Some(epochs) = args.epochs {
        anyhow::ensure!(epochs > 0, "--epochs must be at least 1");
        exp.train.epochs = epochs;
    }
    let out_dir = args.out.clone().unwrap_or_else(|| default_run_dir(&args.config));

    let started = std::time::Instant::now();
    let splits = cnnlab_data::load_with_progress(&exp.data, &args.data_dir, quiet)?;
    if let Some(summary) = splits.report.summary() {
        tracing::warn!("{summary}");
    }
    for line in &splits.report.cache {
        tracing::info!("decode cache: {line}");
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

    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating run folder {}", out_dir.display()))?;
    let resolved = out_dir.join("config.toml");
    let text = toml::to_string(&exp).context("serializing the resolved config")?;
    std::fs::write(&resolved, text).with_context(|| format!("writing {}", resolved.display()))?;
    write_json(&out_dir.join("classes.json"), &splits.train.classes)?;
    if let Some(files) = &splits.files {
        // The exact split, so it can be audited and reproduced.
        write_json(&out_dir.join("split.json"), files)?;
    }
    if !splits.report.skipped.is_empty() {
        write_json(&out_dir.join("skipped.json"), &splits.report.skipped)?;
    }

    let opts = RunOptions { out_dir: out_dir.clone(), quiet };
    let metrics = train(&splits, &exp.data.imbalance, &exp.augment.ops, &exp.model, &exp.train, &opts)?;
    tracing::info!(
        "test accuracy {:.4}, loss {:.4} on {} images; run folder {}",
        metrics.report.accuracy,
        metrics.loss,
        metrics.n_samples,
        out_dir.display()
    );
    Ok(())
}
