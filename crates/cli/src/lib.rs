//! The parts of the `cnnlab` command that need no tensors: its command line, the
//! metrics of a predictions CSV, a folder's statistics and the plots. Both binaries use
//! them; `cnnlab` (this crate's light binary, `light.rs`) runs `--help`, `metrics` and
//! `data stats` without loading libtorch and hands every other command to
//! `cnnlab-torch` (`main.rs`). This library must not depend on `cnnlab-train` or
//! `cnnlab-models`: either would link libtorch into the light binary.

pub mod args;
pub mod compare;
pub mod data_stats;
pub mod inspect;
pub mod metrics_cmd;
pub mod plots;
pub mod threads;
