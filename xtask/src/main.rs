//! `cargo xtask`: the project's own automation.
//!
//! It builds nothing of the other crates itself: every step shells out to `cargo`,
//! `python3` or `apt-get`; it depends on neither tch nor the image stack (only an
//! HTTP client, SHA-256 and archive readers for `download`, and the torch-free
//! cnnlab-run for the run folders slurm-check reads).
//!
//! Commands (`cargo xtask --help` lists their options, declared in `flags.rs`):
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
mod flags;
mod setup;
mod slurm_check;
mod train_all;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::flags::XtaskCmd;

fn main() -> ExitCode {
    // `cargo xtask` alone prints the help, as `--help` does.
    let flags = match std::env::args_os().len() {
        1 => flags::Xtask::from_vec(vec!["--help".into()]),
        _ => flags::Xtask::from_env(),
    }
    .unwrap_or_else(|e| e.exit());
    let root = workspace_root();
    let result = match flags.subcommand {
        XtaskCmd::Setup(_) => setup::run(&root).map(|_| ()),
        XtaskCmd::Ci(_) => ci::run(&root),
        XtaskCmd::TrainAll(f) => train_all::run(&root, &f),
        XtaskCmd::Download(f) => download::run(&root, &f),
        XtaskCmd::Bench(f) => bench::run(&root, &f),
        XtaskCmd::SlurmCheck(f) => slurm_check::run(&root, &f),
        XtaskCmd::DeviceBundle(f) => device::run(&root, &f),
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
