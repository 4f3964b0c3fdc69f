//! Residual blocks: convolutions with batch norms, ReLU between them, the input (or
//! its 1x1 projection when the shape changes) added, then ReLU. The `residual` layer
//! (`{ type = "residual", out, stride = 1 }`: two 3x3 convolutions) and torchvision's
//! `BasicBlock` are the same block with other names and initial weights;
//! `bottleneck.rs` builds torchvision's `Bottleneck` on it.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::{batch_norm2d, block_bn, block_conv, inits, Planned};
use crate::spec::{InitScheme, LayerSpec};
use crate::summary::Shape;

/// torchvision's batch norm defaults (momentum, eps).
pub(crate) const RESNET_BN: (f64, f64) = (0.1, 1e-5);

/// `what` is the spec, for the messages.
pub(super) fn plan(out: i64, stride: i64, what: &LayerSpec, input: Shape) -> Result<Planned, String> {
    let (c, h, w) = input.map()?;
    if out < 1 || stride < 1 {
        return Err(format!("needs out and stride >= 1, got {what:?}"));
    }
    Ok(basic("ResidualBlock", c, out, stride, (h, w)))
}

/// Two 3x3 convolutions `cin -> out -> out` (the first with `stride`) on an `h x w`
/// map, with batch norms and the projection when the shape changes.
pub(crate) fn basic(name: &'static str, cin: i64, out: i64, stride: i64, (h, w): (i64, i64)) -> Planned {
    let side = |x: i64| (x - 1) / stride + 1;
    let project = stride != 1 || cin != out;
    let convs = cin * out * 9 + out * out * 9 + if project { cin * out } else { 0 };
    let norms = if project { 3 } else { 2 } * 2 * out;
    Planned { name, output: Shape::Map(out, side(h), side(w)), trainable: convs + norms, non_trainable: norms }
}

/// The `residual` layer under `p`: `conv1`, `bn1`, `conv2`, `bn2`, and `shortcut`,
/// `shortcut_bn` when it projects; weights from the model's `init`.
pub(super) fn layer(p: &nn::Path, c: i64, out: i64, stride: i64, init: InitScheme) -> ResBlock {
    let conv = |p: nn::Path, cin: i64, k: i64, stride: i64| {
        let (ws_init, _) = inits(init, cin * k * k, out * k * k);
        let cfg = nn::ConvConfig { stride, padding: k / 2, bias: false, ws_init, ..Default::default() };
        nn::conv2d(p, cin, out, k, cfg)
    };
    let (momentum, eps) = RESNET_BN;
    let projection = (stride != 1 || c != out)
        .then(|| (conv(p / "shortcut", c, 1, stride), batch_norm2d(p / "shortcut_bn", out, momentum, eps)));
    let convs = vec![
        (conv(p / "conv1", c, 3, stride), batch_norm2d(p / "bn1", out, momentum, eps)),
        (conv(p / "conv2", out, 3, 1), batch_norm2d(p / "bn2", out, momentum, eps)),
    ];
    ResBlock { convs, projection }
}

/// torchvision's `BasicBlock` of `planes` under `bp`, with its names (`conv1`, `bn1`,
/// `conv2`, `bn2`, `downsample.0`, `downsample.1`).
pub(crate) fn basic_block(bp: &nn::Path, cin: i64, planes: i64, stride: i64) -> ResBlock {
    torchvision_block(bp, &[(cin, planes, 3, stride), (planes, planes, 3, 1)], cin, planes, stride)
}

/// A torchvision block under `bp`: `convs` as (in, out, kernel, stride), numbered from
/// 1, and the downsample projection `cin -> cout` when the shape changes.
pub(super) fn torchvision_block(
    bp: &nn::Path,
    convs: &[(i64, i64, i64, i64)],
    cin: i64,
    cout: i64,
    stride: i64,
) -> ResBlock {
    let convs = convs
        .iter()
        .enumerate()
        .map(|(i, &(i_ch, o_ch, k, s))| {
            let conv = block_conv(bp / format!("conv{}", i + 1), i_ch, o_ch, k, s, k / 2, 1);
            (conv, block_bn(bp / format!("bn{}", i + 1), o_ch, RESNET_BN))
        })
        .collect();
    let projection = (stride != 1 || cin != cout).then(|| {
        let dp = bp / "downsample";
        (block_conv(&dp / 0, cin, cout, 1, stride, 0, 1), block_bn(&dp / 1, cout, RESNET_BN))
    });
    ResBlock { convs, projection }
}

/// A residual block (see the module).
#[derive(Debug)]
pub(crate) struct ResBlock {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    projection: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl ModuleT for ResBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut x = xs.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            x = x.apply(conv).apply_t(bn, train);
            if i < last {
                x = x.relu();
            }
        }
        let identity = match &self.projection {
            Some((conv, bn)) => xs.apply(conv).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (x + identity).relu()
    }
}
