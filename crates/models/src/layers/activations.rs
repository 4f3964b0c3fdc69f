//! `relu`, `relu6`, `elu`, `leaky_relu`, `gelu`: PyTorch's activations with their
//! default arguments (`LeakyReLU(0.01)`, `ELU(1.0)`, exact GELU).

use tch::nn::{self, ModuleT};

use super::Planned;
use crate::spec::LayerSpec;
use crate::summary::Shape;

pub(super) fn plan(layer: &LayerSpec, input: Shape) -> Planned {
    let name = match layer {
        LayerSpec::Relu6 => "ReLU6",
        LayerSpec::Elu => "ELU",
        LayerSpec::LeakyRelu => "LeakyReLU",
        LayerSpec::Gelu => "GELU",
        _ => "ReLU",
    };
    Planned::free(name, input)
}

pub(super) fn build(layer: &LayerSpec) -> Box<dyn ModuleT> {
    match layer {
        LayerSpec::Relu6 => Box::new(nn::func(|x| x.clamp(0.0, 6.0))),
        LayerSpec::Elu => Box::new(nn::func(|x| x.elu())),
        LayerSpec::LeakyRelu => Box::new(nn::func(|x| x.leaky_relu())),
        LayerSpec::Gelu => Box::new(nn::func(|x| x.gelu("none"))),
        _ => Box::new(nn::func(|x| x.relu())),
    }
}
