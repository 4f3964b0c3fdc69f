//! cnnlab-models: layer specs from the experiment file, built into tch modules.
//!
//! A network is an ordered list of [`LayerSpec`]s (`[model] layers = [...]` in TOML).
//! [`plan`] checks it against the data's input shape and class count before any
//! tensor exists, so a shape that cannot work is an error naming the layer index;
//! [`build`] turns it into a module implementing `tch::nn::ModuleT`.
//!
//! ```no_run
//! use cnnlab_models::{build, ModelConfig, Shape};
//! use tch::nn::{self, ModuleT};
//! let cfg: ModelConfig = toml::from_str(r#"layers = [
//!     { type = "conv", out = 8, kernel = 3, padding = 1 }, { type = "relu" },
//!     { type = "flatten" }, { type = "linear" } ]"#).unwrap();
//! let vs = nn::VarStore::new(tch::Device::Cpu);
//! let net = build(&vs.root(), &cfg, Shape::Map(1, 28, 28), 10).unwrap();
//! let logits = net.forward_t(&tch::Tensor::zeros([2, 1, 28, 28], tch::kind::FLOAT_CPU), false);
//! assert_eq!(logits.size(), [2, 10]);
//! ```
//!
//! Only this crate and `cnnlab-train` use `tch` (see ARCHITECTURE.md).

mod backbone;
mod error;
mod ffi;
mod layers;
mod network;
pub mod onnx;
mod pretrained;
mod spec;
mod summary;

pub use backbone::BackboneNet;
pub use error::{Error, Result};
pub use ffi::{autocast_kind, set_torch_threads, torch_info, Autocast, TorchInfo};
pub use network::{build, channels_last, plan, Network};
pub use pretrained::{load_pretrained, state_dict, Loaded};
pub use spec::{Backbone, Head, HeadName, InitScheme, LayerSpec, ModelConfig, ModelKind, Precision};
pub use summary::{summary, thousands, LayerRow, Shape};

/// The Python script that converts a `torch.save`d state_dict (`.pth`) into
/// `.safetensors` (`python -c PTH_TO_SAFETENSORS in.pth out.safetensors`), with the
/// project's own torch: libtorch cannot read Python pickles.
pub const PTH_TO_SAFETENSORS: &str = include_str!("pth_to_safetensors.py");
