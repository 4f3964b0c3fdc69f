//! `{ type = "inverted_residual", out, expand = 6, kernel = 3, stride = 1 }`:
//! EfficientNet-Lite's `MBConvBlock` without squeeze-excite (1x1 expansion, depthwise
//! convolution with TensorFlow's "SAME" padding, 1x1 projection, ReLU6; the input
//! added when the shape stays), with its parameter names; EfficientNet-Lite0's blocks.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{block_bn, block_conv, Planned};
use crate::spec::LayerSpec;
use crate::summary::Shape;

/// EfficientNet's batch norm: PyTorch momentum 1 - 0.99, eps 1e-3.
pub(crate) const LITE_BN: (f64, f64) = (0.01, 1e-3);

/// `what` is the spec, for the messages.
pub(super) fn plan(
    out: i64,
    expand: i64,
    kernel: i64,
    stride: i64,
    what: &LayerSpec,
    input: Shape,
) -> Result<Planned, String> {
    let (c, h, w) = input.map()?;
    if out < 1 || expand < 1 || kernel < 1 || stride < 1 {
        return Err(format!("needs out, expand, kernel and stride >= 1, got {what:?}"));
    }
    Ok(counts(c, out, expand, kernel, stride, (h, w)))
}

/// A block `cin -> out` on an `h x w` map.
pub(crate) fn counts(cin: i64, out: i64, expand: i64, kernel: i64, stride: i64, (h, w): (i64, i64)) -> Planned {
    let side = |x: i64| (x + stride - 1) / stride;
    let mid = cin * expand;
    let expansion = if expand == 1 { 0 } else { cin * mid + 2 * mid };
    let trainable = expansion + mid * kernel * kernel + 2 * mid + mid * out + 2 * out;
    let buffers = 2 * (if expand == 1 { 0 } else { mid } + mid + out);
    Planned { name: "InvertedResidual", output: Shape::Map(out, side(h), side(w)), trainable, non_trainable: buffers }
}

/// One block under `bp` with EfficientNet-Lite's names (`_expand_conv`, `_bn0`,
/// `_depthwise_conv`, `_bn1`, `_project_conv`, `_bn2`); `drop` is its drop-connect
/// rate in training.
pub(crate) fn block(bp: &nn::Path, cin: i64, cout: i64, e: i64, k: i64, s: i64, drop: f64) -> MbConv {
    let mid = cin * e;
    let expand =
        (e != 1).then(|| (block_conv(bp / "_expand_conv", cin, mid, 1, 1, 0, 1), block_bn(bp / "_bn0", mid, LITE_BN)));
    MbConv {
        expand,
        depthwise: block_conv(bp / "_depthwise_conv", mid, mid, k, s, 0, mid),
        bn1: block_bn(bp / "_bn1", mid, LITE_BN),
        project: block_conv(bp / "_project_conv", mid, cout, 1, 1, 0, 1),
        bn2: block_bn(bp / "_bn2", cout, LITE_BN),
        kernel: k,
        stride: s,
        skip: s == 1 && cin == cout,
        drop,
    }
}

/// One inverted-residual block.
#[derive(Debug)]
pub(crate) struct MbConv {
    expand: Option<(nn::Conv2D, nn::BatchNorm)>,
    depthwise: nn::Conv2D,
    bn1: nn::BatchNorm,
    project: nn::Conv2D,
    bn2: nn::BatchNorm,
    kernel: i64,
    stride: i64,
    skip: bool,
    /// Stochastic depth ("drop connect") in training: 0.2 * block index / blocks.
    drop: f64,
}

impl ModuleT for MbConv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.shallow_clone();
        if let Some((conv, bn)) = &self.expand {
            x = relu6(x.apply(conv).apply_t(bn, train));
        }
        x = relu6(same_pad(&x, self.kernel, self.stride).apply(&self.depthwise).apply_t(&self.bn1, train));
        x = x.apply(&self.project).apply_t(&self.bn2, train);
        if !self.skip {
            return x;
        }
        if train && self.drop > 0.0 {
            // drop_connect: keep each sample's branch with probability 1 - p, scaled.
            let keep = 1.0 - self.drop;
            let mask = (Tensor::rand([x.size()[0], 1, 1, 1], (x.kind(), x.device())) + keep).floor();
            x = x / keep * mask;
        }
        x + xs
    }
}

/// TensorFlow's "SAME" padding of `efficientnet-lite-pytorch`'s
/// `Conv2dDynamicSamePadding`: output `ceil(in / stride)`, the odd pixel of padding
/// at the bottom and right. At 224x224 it equals the static padding the original
/// builds for its 224 input size.
pub(crate) fn same_pad(xs: &Tensor, k: i64, stride: i64) -> Tensor {
    let size = xs.size();
    let pad = |x: i64| (((x + stride - 1) / stride - 1) * stride + k - x).max(0);
    let (ph, pw) = (pad(size[2]), pad(size[3]));
    if ph == 0 && pw == 0 {
        return xs.shallow_clone();
    }
    xs.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
}

pub(crate) fn relu6(xs: Tensor) -> Tensor {
    xs.clamp(0.0, 6.0)
}
