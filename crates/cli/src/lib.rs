//! The parts of the `cnnlab` command that need no tensors: its command line, reading
//! experiment files, the metrics of a predictions CSV, comparisons, a folder's
//! statistics, the run folders' status, the report and the plots. Both binaries use
//! them; `cnnlab` (this crate's light binary, `light.rs`) runs `--help`, `metrics`,
//! `compare`, `status`, `report` and `data stats` without loading libtorch and hands
//! every other command to `cnnlab-torch` (`main.rs`). This library must not use
//! `cnnlab-train` or `cnnlab-models` (any item of theirs would link libtorch into the
//! light binary); the run folder and the `[model]`/`[train]` types are read through
//! the torch-free `cnnlab-run`.

pub mod args;
pub mod compare;
pub mod data_stats;
pub mod experiment;
pub mod inspect;
pub mod metrics_cmd;
pub mod plots;
pub mod report;
pub mod status;
pub mod threads;
pub mod tune;

/// `cnnlab status RUN | head -1`: when the reader of our output goes away, stop
/// quietly, as `cat` does, instead of panicking in `println!` on the broken pipe
/// (exit 101 with a backtrace). Rust starts programs with SIGPIPE ignored; this
/// gives it back its default action. For the commands that print results, not for
/// `train` or `lr-find`: their log on a closed pipe must not kill them before their
/// checkpoint or their files are written.
pub fn quit_quietly_on_broken_pipe() {
    // SAFETY: changes one signal's disposition, at start-up, before any thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
