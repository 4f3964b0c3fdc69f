//! The `cnnlab` binary as a user runs it, one module per topic (ripgrep's layout):
//! bad input gives one-line errors, real data learns, runs resume after any signal,
//! finished runs predict, evaluate, explain and compare, and the report reads them.
//! Each `cnnlab` a test starts gets its share of the CPUs (`util::command`); runs
//! that several tests only read are trained once per process (`util::fashion_run`).

mod configs;
mod errors;
mod explain;
mod export;
mod large;
mod light;
mod lr_find;
mod predict;
mod real_data;
mod report;
mod resume;
mod run_folder;
mod serve;
mod tensorboard;
mod tune;
mod util;
