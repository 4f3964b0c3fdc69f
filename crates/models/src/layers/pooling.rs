//! `maxpool` and `avgpool` (`kernel`, `stride` = kernel; no padding, floor mode) and
//! `global_avg_pool` (a map to one value per channel).

use tch::nn::{self, ModuleT};

use super::Planned;
use crate::spec::LayerSpec;
use crate::summary::Shape;

/// `name` is the layer table's (`MaxPool2d`, `AvgPool2d`); `what` the spec, for the messages.
pub(super) fn plan(
    name: &'static str,
    kernel: i64,
    stride: Option<i64>,
    what: &LayerSpec,
    input: Shape,
) -> Result<Planned, String> {
    let (c, h, w) = input.map()?;
    let stride = stride.unwrap_or(kernel);
    if kernel < 1 || stride < 1 {
        return Err(format!("needs kernel and stride >= 1, got {what:?}"));
    }
    if h < kernel || w < kernel {
        return Err(format!("cannot pool a {h}x{w} map with kernel {kernel}"));
    }
    Ok(Planned::free(name, Shape::Map(c, (h - kernel) / stride + 1, (w - kernel) / stride + 1)))
}

pub(super) fn plan_global(input: Shape) -> Result<Planned, String> {
    let (c, ..) = input.map()?;
    Ok(Planned::free("GlobalAvgPool2d", Shape::Flat(c)))
}

pub(super) fn build_max(kernel: i64, stride: Option<i64>) -> Box<dyn ModuleT> {
    let s = stride.unwrap_or(kernel);
    Box::new(nn::func(move |x| x.max_pool2d([kernel, kernel], [s, s], [0, 0], [1, 1], false)))
}

pub(super) fn build_avg(kernel: i64, stride: Option<i64>) -> Box<dyn ModuleT> {
    let s = stride.unwrap_or(kernel);
    Box::new(nn::func(move |x| x.avg_pool2d([kernel, kernel], [s, s], [0, 0], false, true, None)))
}

/// The global average pooling, also a backbone's last layer: `[N, C, H, W]` -> `[N, C]`.
pub(crate) fn global() -> nn::Func<'static> {
    nn::func(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
}
