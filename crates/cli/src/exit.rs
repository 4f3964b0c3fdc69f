//! How a command failed, and the exit code that says so: `cargo xtask train-all` and
//! schedulers act on them. The kind is set where the failure happens (a missing
//! dataset in `load_data`, a held lock in `train`), not found again afterwards in an
//! error chain.
//!
//! 0 success, 1 error, 2 bad command line (clap), 3 the config's dataset or weights
//! are not on disk, 4 the run folder is being trained by another process (its
//! `.lock`), 5 with `--if-unfinished` the run has finished already, 128 + N stopped by
//! signal N after saving a resumable checkpoint (130 Ctrl-C, 138 SIGUSR1, 143 SIGTERM).

use std::process::ExitCode;

/// Why a command failed, beyond "an error".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Exit 1.
    Error,
    /// Exit 3: the config's dataset (or its pretrained weights) is not on disk.
    DatasetMissing,
    /// Exit 4: another process holds the run folder's lock.
    Busy,
    /// Exit 5: `train --if-unfinished` found the run finished.
    Finished,
    /// Exit 128 + N: stopped by signal N, with a resumable checkpoint.
    Stopped,
}

/// A command's error and its [`Kind`].
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: Kind,
    pub(crate) error: anyhow::Error,
}

/// What a command returns.
pub(crate) type Outcome<T = ()> = Result<T, Failure>;

impl Failure {
    pub(crate) fn new(kind: Kind, error: impl Into<anyhow::Error>) -> Self {
        Failure { kind, error: error.into() }
    }

    /// The error with more context, of the same kind (a seed of a set, say).
    pub(crate) fn context(self, context: String) -> Self {
        Failure { kind: self.kind, error: self.error.context(context) }
    }

    /// Prints the error (one line) and gives the process its exit code.
    pub(crate) fn exit(self, signal_code: impl FnOnce() -> u8) -> ExitCode {
        let err = self.error;
        match self.kind {
            // What the user asked for happened: no "error:" in front.
            Kind::Stopped | Kind::Finished => eprintln!("{err:#}"),
            _ => eprintln!("error: {err:#}"),
        }
        ExitCode::from(match self.kind {
            Kind::Error => 1,
            Kind::DatasetMissing => 3,
            Kind::Busy => 4,
            Kind::Finished => 5,
            Kind::Stopped => signal_code(),
        })
    }
}

/// Any other error is a plain error (exit 1).
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::new(Kind::Error, error)
    }
}
