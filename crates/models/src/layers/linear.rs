//! `{ type = "linear", out = classes, bias = true }`: PyTorch's `Linear`.

use tch::nn::{self, ModuleT};

use super::{inits, Planned};
use crate::spec::InitScheme;
use crate::summary::Shape;

pub(super) fn plan(out: i64, bias: bool, input: Shape) -> Result<Planned, String> {
    let n = input.flat()?;
    if out < 1 {
        return Err(format!("out = {out} must be >= 1"));
    }
    Ok(Planned {
        name: "Linear",
        output: Shape::Flat(out),
        trainable: n * out + if bias { out } else { 0 },
        non_trainable: 0,
    })
}

pub(super) fn build(bias: bool, p: &nn::Path, input: Shape, output: Shape, init: InitScheme) -> Box<dyn ModuleT> {
    let (n, out) = (input.numel(), output.numel());
    let (ws_init, bs_init) = inits(init, n, out);
    Box::new(nn::linear(p, n, out, nn::LinearConfig { ws_init, bs_init: Some(bs_init), bias }))
}
