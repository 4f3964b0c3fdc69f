//! One file per layer type: each holds its spec's plan (output shape, parameter
//! counts, the layer-table name) and its build, next to each other. [`plan`] and
//! [`build`] are the one list of layer types. Adding one: a variant in
//! `cnnlab_run::recipe::model::LayerSpec`, a file here, its `mod` line and an arm in
//! each of the two matches below.

mod activations;
mod batchnorm;
pub(crate) mod bottleneck;
mod conv;
pub(crate) mod inverted_residual;
mod linear;
pub(crate) mod pooling;
pub(crate) mod residual;
mod simple;
pub(crate) mod whiten;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::spec::{InitScheme, LayerSpec};
use crate::summary::{LayerRow, Shape};

/// One planned layer: its layer-table name (`Conv2d`), what it gives per sample and
/// its parameter counts (trainable; buffers such as batch norm's running statistics).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Planned {
    pub(crate) name: &'static str,
    pub(crate) output: Shape,
    pub(crate) trainable: i64,
    pub(crate) non_trainable: i64,
}

impl Planned {
    /// The layer table's row `number` (from 1): `Conv2d-3`.
    pub(crate) fn row(self, number: usize) -> LayerRow {
        let Planned { name, output, trainable, non_trainable } = self;
        LayerRow { name: format!("{name}-{number}"), output, trainable, non_trainable }
    }

    /// A layer without parameters.
    fn free(name: &'static str, output: Shape) -> Self {
        Planned { name, output, trainable: 0, non_trainable: 0 }
    }
}

/// What a layer's plan may look at besides its input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanCx {
    /// Its index in the layer list.
    pub(crate) index: usize,
    /// The network's outputs, which a `linear` layer without `out` gives.
    pub(crate) classes: i64,
}

/// What a layer's build needs besides its spec and shapes.
pub(crate) struct BuildCx<'a> {
    pub(crate) init: InitScheme,
    pub(crate) dirac: bool,
    /// Set by a `whiten` layer: its frozen weight and kernel, fitted later.
    pub(crate) whiten: &'a mut Option<(Tensor, i64)>,
}

/// The layer `layer` on `input`, or why it cannot take it.
pub(crate) fn plan(layer: &LayerSpec, input: Shape, cx: PlanCx) -> Result<Planned, String> {
    match *layer {
        LayerSpec::Conv { out, kernel, stride, padding, bias, groups } => {
            conv::plan(conv::Conv { out, kernel, stride, padding, bias, groups }, layer, input)
        }
        LayerSpec::Batchnorm { scale, momentum, eps } => batchnorm::plan(scale, momentum, eps, input),
        LayerSpec::Whiten { kernel } => whiten::plan(kernel, input, cx.index),
        LayerSpec::Scale { by } => simple::plan_scale(by, input),
        LayerSpec::Relu | LayerSpec::Relu6 | LayerSpec::Elu | LayerSpec::LeakyRelu | LayerSpec::Gelu => {
            Ok(activations::plan(layer, input))
        }
        LayerSpec::Maxpool { kernel, stride } => pooling::plan("MaxPool2d", kernel, stride, layer, input),
        LayerSpec::Avgpool { kernel, stride } => pooling::plan("AvgPool2d", kernel, stride, layer, input),
        LayerSpec::GlobalAvgPool => pooling::plan_global(input),
        LayerSpec::Residual { out, stride } => residual::plan(out, stride, layer, input),
        LayerSpec::InvertedResidual { out, expand, kernel, stride } => {
            inverted_residual::plan(out, expand, kernel, stride, layer, input)
        }
        LayerSpec::Bottleneck { out, stride } => bottleneck::plan(out, stride, layer, input),
        LayerSpec::Dropout { p } => simple::plan_dropout(p, input),
        LayerSpec::Flatten => Ok(Planned::free("Flatten", Shape::Flat(input.numel()))),
        LayerSpec::Linear { out, bias } => linear::plan(out.unwrap_or(cx.classes), bias, input),
    }
}

/// The module of a planned layer under `p`: `input` is what it receives, `output`
/// what its plan said it gives.
pub(crate) fn build(
    layer: &LayerSpec,
    p: &nn::Path,
    input: Shape,
    output: Shape,
    cx: &mut BuildCx<'_>,
) -> Box<dyn ModuleT> {
    match *layer {
        LayerSpec::Conv { out, kernel, stride, padding, bias, groups } => {
            conv::build(conv::Conv { out, kernel, stride, padding, bias, groups }, p, input, cx)
        }
        LayerSpec::Batchnorm { scale, momentum, eps } => batchnorm::build(scale, momentum, eps, p, output),
        LayerSpec::Whiten { kernel } => whiten::build(kernel, p, input, output, cx),
        LayerSpec::Scale { by } => Box::new(nn::func(move |x| x * by)),
        LayerSpec::Relu | LayerSpec::Relu6 | LayerSpec::Elu | LayerSpec::LeakyRelu | LayerSpec::Gelu => {
            activations::build(layer)
        }
        LayerSpec::Maxpool { kernel, stride } => pooling::build_max(kernel, stride),
        LayerSpec::Avgpool { kernel, stride } => pooling::build_avg(kernel, stride),
        LayerSpec::GlobalAvgPool => Box::new(pooling::global()),
        LayerSpec::Residual { out, stride } => Box::new(residual::layer(p, input.channels(), out, stride, cx.init)),
        LayerSpec::InvertedResidual { out, expand, kernel, stride } => {
            Box::new(inverted_residual::block(p, input.channels(), out, expand, kernel, stride, 0.0))
        }
        LayerSpec::Bottleneck { out, stride } => Box::new(bottleneck::block(p, input.channels(), out / 4, stride)),
        LayerSpec::Dropout { p: rate } => Box::new(nn::func_t(move |x, train| x.dropout(rate, train))),
        LayerSpec::Flatten => Box::new(nn::func(|x| x.flatten(1, -1))),
        LayerSpec::Linear { bias, .. } => linear::build(bias, p, input, output, cx.init),
    }
}

/// Weight and bias initialisers for a layer with these fans.
pub(crate) fn inits(scheme: InitScheme, fan_in: i64, fan_out: i64) -> (nn::Init, nn::Init) {
    let uniform = |bound: f64| nn::Init::Uniform { lo: -bound, up: bound };
    match scheme {
        InitScheme::Torch => {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (uniform(bound), uniform(bound))
        }
        InitScheme::Kaiming => (uniform((6.0 / fan_in as f64).sqrt()), nn::Init::Const(0.0)),
        InitScheme::Xavier => (uniform((6.0 / (fan_in + fan_out) as f64).sqrt()), nn::Init::Const(0.0)),
    }
}

/// A batch norm over `n` channels with PyTorch's defaults: weight 1, bias 0 (tch's
/// own default draws the weight uniformly from [0, 1]).
pub(crate) fn batch_norm2d(p: nn::Path, n: i64, momentum: f64, eps: f64) -> nn::BatchNorm {
    nn::batch_norm2d(p, n, bn_config(momentum, eps))
}

pub(crate) fn bn_config(momentum: f64, eps: f64) -> nn::BatchNormConfig {
    nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), momentum, eps, ..Default::default() }
}

/// A bias-free convolution whose weights start as PyTorch's default (Kaiming uniform,
/// a = sqrt(5)), with `padding` on each side: the blocks' convolutions.
pub(crate) fn block_conv(
    p: nn::Path,
    cin: i64,
    cout: i64,
    k: i64,
    stride: i64,
    padding: i64,
    groups: i64,
) -> nn::Conv2D {
    let (ws_init, _) = inits(InitScheme::Torch, (cin / groups) * k * k, 0);
    let cfg = nn::ConvConfig { stride, padding, groups, bias: false, ws_init, ..Default::default() };
    nn::conv2d(p, cin, cout, k, cfg)
}

/// A block's batch norm (`inverted_residual`, `bottleneck`, the backbones'): tch's
/// default weight init, replaced when pretrained weights load.
pub(crate) fn block_bn(p: nn::Path, n: i64, (momentum, eps): (f64, f64)) -> nn::BatchNorm {
    nn::batch_norm2d(p, n, nn::BatchNormConfig { momentum, eps, ..Default::default() })
}

/// A batch norm's parameters over `n` channels: (weight and bias, running mean and variance).
pub(crate) fn bn_counts(n: i64) -> (i64, i64) {
    (2 * n, 2 * n)
}
