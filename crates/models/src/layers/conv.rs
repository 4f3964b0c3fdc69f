//! `{ type = "conv", out, kernel, stride = 1, padding = 0, bias = true, groups = 1 }`:
//! PyTorch's `Conv2d`.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{inits, BuildCx, Planned};
use crate::spec::LayerSpec;
use crate::summary::Shape;

/// The spec's fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct Conv {
    pub(super) out: i64,
    pub(super) kernel: i64,
    pub(super) stride: i64,
    pub(super) padding: i64,
    pub(super) bias: bool,
    pub(super) groups: i64,
}

/// `what` is the spec, for the messages.
pub(super) fn plan(conv: Conv, what: &LayerSpec, input: Shape) -> Result<Planned, String> {
    let (c, h, w) = input.map()?;
    let Conv { out, kernel, stride, padding, bias, groups } = conv;
    if out < 1 || kernel < 1 || stride < 1 || padding < 0 {
        return Err(format!("needs out, kernel, stride >= 1 and padding >= 0, got {what:?}"));
    }
    if groups < 1 || c % groups != 0 || out % groups != 0 {
        return Err(format!("groups = {groups} must divide both the {c} input and {out} output channels"));
    }
    if h + 2 * padding < kernel || w + 2 * padding < kernel {
        return Err(format!("kernel {kernel} is larger than the padded {h}x{w} input"));
    }
    let side = |x: i64| (x + 2 * padding - kernel) / stride + 1;
    let params = out * (c / groups) * kernel * kernel + if bias { out } else { 0 };
    Ok(Planned { name: "Conv2d", output: Shape::Map(out, side(h), side(w)), trainable: params, non_trainable: 0 })
}

pub(super) fn build(conv: Conv, p: &nn::Path, input: Shape, cx: &BuildCx<'_>) -> Box<dyn ModuleT> {
    let Conv { out, kernel, stride, padding, bias, groups } = conv;
    let c = input.channels();
    let (ws_init, bs_init) = inits(cx.init, c / groups * kernel * kernel, out / groups * kernel * kernel);
    let cfg = nn::ConvConfig { stride, padding, bias, groups, ws_init, bs_init, ..Default::default() };
    let conv = nn::conv2d(p, c, out, kernel, cfg);
    if cx.dirac {
        set_dirac(&conv.ws);
    }
    Box::new(conv)
}

/// `torch.nn.init.dirac_` on the first min(out, in) filters of a conv weight
/// `[out, in, kh, kw]`: filter i is 1 at input channel i's centre tap, 0 elsewhere.
fn set_dirac(ws: &Tensor) {
    let size = ws.size();
    let (out, inp, kh, kw) = (size[0], size[1], size[2], size[3]);
    let n = out.min(inp);
    tch::no_grad(|| {
        let mut head = ws.narrow(0, 0, n);
        let _ = head.zero_();
        let eye = Tensor::eye(n, (ws.kind(), ws.device()));
        head.select(2, kh / 2).select(2, kw / 2).narrow(1, 0, n).copy_(&eye);
    });
}
