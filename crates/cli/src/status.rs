//! `cnnlab status`: where each run folder stands, read through cnnlab-run (no
//! libtorch: the light `cnnlab` binary answers it).

use std::path::PathBuf;

use anyhow::Result;
use cnnlab_run::{files, RunDir, RunState};

/// `cnnlab status`: a line (or a JSON object) per run folder, what `cargo xtask
/// train-all` reads to skip, resume or start each run.
/// A folder that does not exist or cannot be read is an error line of its own; the
/// others are still listed, and the exit code says that something failed.
pub fn run(runs: &[PathBuf], json: bool) -> Result<()> {
    let mut failed = 0;
    for dir in runs {
        let read = || -> Result<(RunState, Option<f64>)> {
            anyhow::ensure!(dir.is_dir(), "no such folder (a run folder that was never trained into?)");
            let run = RunDir::new(dir);
            let state = run.state()?;
            let last_rate = match state {
                RunState::Empty => None,
                _ if run.has(files::HISTORY) => run.read_history()?.last().map(|r| r.images_per_sec),
                _ => None,
            };
            Ok((state, last_rate))
        };
        let (state, last_rate) = match read() {
            Ok(read) => read,
            Err(e) => {
                use std::io::Write as _;
                std::io::stdout().flush()?;
                eprintln!("error: {}: {e:#}", dir.display());
                failed += 1;
                continue;
            }
        };
        if json {
            let mut v = match state {
                RunState::Empty => serde_json::json!({ "state": "empty" }),
                RunState::Unfinished { epochs_done } => {
                    serde_json::json!({ "state": "unfinished", "epochs_done": epochs_done })
                }
                RunState::Finished { accuracy, epochs } => {
                    serde_json::json!({ "state": "finished", "accuracy": accuracy, "epochs_done": epochs })
                }
            };
            v["run"] = dir.display().to_string().into();
            v["last_images_per_sec"] = last_rate.into();
            println!("{v}");
        } else {
            let what = match state {
                RunState::Empty => "empty".to_string(),
                RunState::Unfinished { epochs_done } => {
                    format!("unfinished after {epochs_done} epochs (cnnlab train --resume {})", dir.display())
                }
                RunState::Finished { accuracy, epochs } => {
                    format!("finished: {epochs} epochs, test accuracy {accuracy:.4}")
                }
            };
            println!("{}: {what}", dir.display());
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} folders could not be read (named above)", runs.len());
    Ok(())
}
