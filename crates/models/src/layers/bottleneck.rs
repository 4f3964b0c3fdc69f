//! `{ type = "bottleneck", out, stride = 1 }`: torchvision's `Bottleneck` (1x1 down to
//! `out / 4`, 3x3 with the stride, 1x1 up to `out`; "ResNet v1.5"), a
//! [`ResBlock`](super::residual::ResBlock); ResNet-50's blocks.

use tch::nn;

use super::residual::{torchvision_block, ResBlock};
use super::Planned;
use crate::spec::LayerSpec;
use crate::summary::Shape;

/// `what` is the spec, for the messages.
pub(super) fn plan(out: i64, stride: i64, what: &LayerSpec, input: Shape) -> Result<Planned, String> {
    let (c, h, w) = input.map()?;
    if out < 4 || out % 4 != 0 || stride < 1 {
        return Err(format!("needs out a multiple of 4 and stride >= 1, got {what:?}"));
    }
    Ok(counts(c, out, stride, (h, w)))
}

/// A bottleneck `cin -> out` on an `h x w` map.
pub(crate) fn counts(cin: i64, out: i64, stride: i64, (h, w): (i64, i64)) -> Planned {
    let width = out / 4;
    let side = |x: i64| (x - 1) / stride + 1;
    let project = stride != 1 || cin != out;
    let convs = cin * width + width * width * 9 + width * out + if project { cin * out } else { 0 };
    let channels = 2 * width + out + if project { out } else { 0 };
    let output = Shape::Map(out, side(h), side(w));
    Planned { name: "Bottleneck", output, trainable: convs + 2 * channels, non_trainable: 2 * channels }
}

/// The block of `planes` (`4 * planes` out) under `bp`, with torchvision's names.
pub(crate) fn block(bp: &nn::Path, cin: i64, planes: i64, stride: i64) -> ResBlock {
    let cout = planes * 4;
    torchvision_block(bp, &[(cin, planes, 1, 1), (planes, planes, 3, stride), (planes, cout, 1, 1)], cin, cout, stride)
}
