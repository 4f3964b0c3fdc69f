//! One file per command of `cnnlab-torch` (and the parts `train` is made of).

pub(crate) mod data;
pub(crate) mod explain;
pub(crate) mod export;
pub(crate) mod info;
pub(crate) mod lr_find;
pub(crate) mod predict;
pub(crate) mod run_outputs;
pub(crate) mod seeds;
pub(crate) mod serve;
pub(crate) mod train;
pub(crate) mod tune;
