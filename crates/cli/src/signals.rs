//! Stopping a training cleanly on a signal: Ctrl-C (SIGINT), SIGTERM (what `kill`,
//! Kubernetes and Slurm send at a time limit or preemption) and SIGUSR1 (Slurm's
//! `--signal=B:USR1@120` warning, Lightning's choice for "save and requeue") all ask
//! the trainer to finish the current optimizer step, write the resumable checkpoint
//! atomically and exit with 128 + the signal's number; a second signal exits at once.
//! Under Slurm, `--requeue` / `[train] requeue_on_signal` then puts the job back in
//! the queue (`scontrol requeue $SLURM_JOB_ID`), and its next start resumes.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

/// The signals that stop a training with a checkpoint.
const STOPPING: [i32; 3] = [SIGINT, SIGTERM, SIGUSR1];

/// The first stopping signal received, 0 before any.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The flag the trainer polls between optimizer steps, set by the first stopping
/// signal; the handler thread is started once per process (a set of seeds trains
/// several runs in one process).
pub(crate) fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(flag.clone());
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    let mut signals = Signals::new(STOPPING).context("installing the SIGINT/SIGTERM/SIGUSR1 handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if flag.swap(true, Ordering::SeqCst) {
                    quit_at_once(signal);
                }
                RECEIVED.store(signal, Ordering::SeqCst);
                eprintln!(
                    "\n{}: stopping after this step with a resumable checkpoint (again to quit at once)...",
                    name(signal)
                );
            }
        })
        .context("starting the signal thread")?;
    Ok(FLAG.get_or_init(|| interrupt).clone())
}

/// A second signal: ends the process now with 128 + `signal`. `_exit`, because
/// `std::process::exit` from this thread ran libtorch's static destructors while the
/// main thread was still inside libtorch (INTERNAL ASSERT failures, segfaults). The
/// line is one write(2), taking no lock the main thread may hold, and is true
/// whatever the main thread was doing: the checkpoint of this stop may or may not
/// be written yet, the last one written is kept (checkpoints are written whole).
fn quit_at_once(signal: i32) -> ! {
    let line = format!("\n{} again: quitting at once; the last checkpoint written, if any, is kept\n", name(signal));
    // SAFETY: write(2) of a live buffer and _exit(2), both async-signal-safe.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(128 + signal)
    }
}

/// The first stopping signal received, if any.
pub(crate) fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The exit code of a training stopped by a signal: 128 + its number (130 Ctrl-C,
/// 143 SIGTERM, 138 SIGUSR1), as a shell reports a process the signal killed.
pub(crate) fn exit_code() -> u8 {
    (128 + received().unwrap_or(SIGINT)) as u8
}

/// "SIGTERM" for 15.
pub(crate) fn name(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Ctrl-C (SIGINT)",
        SIGTERM => "SIGTERM",
        SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}

/// After a stop by SIGTERM or SIGUSR1 (not Ctrl-C, a person's "stop"): puts this
/// Slurm job back in the queue so that it starts again and resumes. A no-op with a
/// warning outside Slurm.
pub(crate) fn requeue() {
    if received().is_none_or(|s| s == SIGINT) {
        return;
    }
    let Ok(job) = std::env::var("SLURM_JOB_ID") else {
        tracing::warn!("requeue asked for, but this is not a Slurm job (no SLURM_JOB_ID): not requeued");
        return;
    };
    match std::process::Command::new("scontrol").args(["requeue", &job]).status() {
        Ok(s) if s.success() => tracing::info!("Slurm job {job} requeued: it resumes when it starts again"),
        Ok(s) => tracing::warn!("`scontrol requeue {job}` failed ({s}): resubmit the job to resume"),
        Err(e) => tracing::warn!("could not run `scontrol requeue {job}` ({e}): resubmit the job to resume"),
    }
}
