//! `cnnlab`: the command users run. It answers `--help`, `--version`, `metrics`,
//! `compare`, `status`, `report` and `data stats` itself, without libtorch (loading it costs ~0.7 s and ~500 MB of
//! mappings even for `--help`), and replaces itself with `cnnlab-torch`, installed
//! beside it, for every command that needs tensors. Exit codes are `cnnlab-torch`'s:
//! 0 success, 1 error, 2 bad command line, 3 the dataset is not on disk.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use cnnlab_cli::args::{Cli, Command, DataCommand};
use cnnlab_cli::{compare, data_stats, metrics_cmd};

/// The binary that runs the commands needing libtorch.
const TORCH_BINARY: &str = "cnnlab-torch";

fn main() -> ExitCode {
    // Bad command lines and --help end here (clap exits with 2 or 0).
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Metrics { .. }
            | Command::Compare { .. }
            | Command::Status { .. }
            | Command::Report { .. }
            | Command::Data(DataCommand::Stats { .. })
    ) {
        cnnlab_cli::quit_quietly_on_broken_pipe();
    }
    let result = match &cli.command {
        Command::Metrics { file, json } => {
            init_logging(cli.quiet);
            metrics_cmd::run(file, *json)
        }
        Command::Compare { a, b, metric, resamples, seed, json } => {
            init_logging(cli.quiet);
            let boot = cnnlab_metrics::stats::Bootstrap { resamples: *resamples, seed: *seed, ..Default::default() };
            compare::run(a, b, metric, &boot, *json)
        }
        Command::Status { runs, json } => {
            init_logging(cli.quiet);
            cnnlab_cli::status::run(runs, *json)
        }
        Command::Report { runs, comparisons } => {
            init_logging(cli.quiet);
            cnnlab_cli::report::run(runs, comparisons)
        }
        Command::Data(DataCommand::Stats { dir, json, plot }) => {
            init_logging(cli.quiet);
            data_stats::stats(dir, *json, plot.as_deref())
        }
        _ => exec_torch(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(quiet: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if quiet { "warn" } else { "info" }));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Replaces this process with `cnnlab-torch` and the same arguments: same pid, so
/// signals, Ctrl-C and exit codes are the torch binary's own. Returns only on failure.
fn exec_torch() -> Result<()> {
    let torch = torch_binary()?;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let err = std::process::Command::new(&torch).arg0("cnnlab").args(std::env::args_os().skip(1)).exec();
        Err(err).with_context(|| format!("running {}", torch.display()))
    }
    #[cfg(not(unix))]
    {
        let status = std::process::Command::new(&torch)
            .args(std::env::args_os().skip(1))
            .status()
            .with_context(|| format!("running {}", torch.display()))?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// `cnnlab-torch` beside this executable.
fn torch_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the cnnlab executable")?;
    let torch = exe.with_file_name(format!("{TORCH_BINARY}{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        torch.is_file(),
        "{} is missing: this command needs libtorch, which `cnnlab` hands to {TORCH_BINARY} beside it \
         (`cargo build --release -p cnnlab-cli` builds both; `cargo cnnlab ...` runs {TORCH_BINARY} directly)",
        torch.display()
    );
    Ok(torch)
}
