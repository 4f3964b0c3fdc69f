//! Learning-rate schedules and the monitored metric: `cnnlab_run::recipe::schedule`,
//! torch-free (a run's `config.toml` holds them).

pub use cnnlab_run::recipe::schedule::{warmup_factor, Monitor, PlateauState, Schedule};
