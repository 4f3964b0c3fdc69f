//! ImageNet backbones with their PyTorch originals' parameter names, so that the
//! originals' `state_dict`s load tensor for tensor: EfficientNet-Lite0
//! (`efficientnet-lite-pytorch`'s `EfficientNet.from_name("efficientnet-lite0")`:
//! `_conv_stem`, `_blocks.N._depthwise_conv`, ..., `_fc`) and torchvision's
//! ResNet-18/34/50 (`conv1`, `layer1.0.conv1`, ..., `fc`).
//!
//! A backbone ends in global average pooling: it maps `[N, 3, H, W]` to
//! `[N, features]`; the classification head (`_fc` / `fc`) is built after it from
//! the `[model]` head settings.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::spec::Backbone;
use crate::summary::{LayerRow, Shape};

/// EfficientNet-Lite0's stages: (repeats, kernel, stride, expansion, in, out), as
/// `efficientnet_lite_builder.py`'s `r1_k3_s11_e1_i32_o16`, ... strings.
const LITE0_STAGES: [(i64, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// EfficientNet's batch norm: PyTorch momentum 1 - 0.99, eps 1e-3.
const LITE_BN: (f64, f64) = (0.01, 1e-3);
/// torchvision's batch norm defaults.
const RESNET_BN: (f64, f64) = (0.1, 1e-5);

/// ResNet's blocks per stage and whether they are bottlenecks.
fn resnet_layout(backbone: Backbone) -> ([i64; 4], bool) {
    match backbone {
        Backbone::Resnet18 => ([2, 2, 2, 2], false),
        Backbone::Resnet34 => ([3, 4, 6, 3], false),
        _ => ([3, 4, 6, 3], true),
    }
}

/// The layer table of `backbone` on an `input` map, without libtorch: one row per
/// stem, block and head convolution, then the pooling.
pub(crate) fn plan(backbone: Backbone, input: Shape) -> Result<Vec<LayerRow>> {
    let Shape::Map(c, h, w) = input else {
        return Err(Error::Invalid(format!("backbone {} needs images, got flat features", backbone.name())));
    };
    if c != 3 {
        return Err(Error::Invalid(format!(
            "backbone {} needs RGB images (3 channels), the data has {c}: set data.channels = 3",
            backbone.name()
        )));
    }
    if h < 32 || w < 32 {
        return Err(Error::Invalid(format!(
            "backbone {} needs images of at least 32x32, got {h}x{w}",
            backbone.name()
        )));
    }
    let mut rows = vec![];
    let mut push = |name: &str, out: Shape, trainable: i64, buffers: i64| {
        rows.push(LayerRow {
            name: format!("{name}-{}", rows.len() + 1),
            output: out,
            trainable,
            non_trainable: buffers,
        })
    };
    // A batch norm over n channels: weight and bias, running mean and variance.
    let bn = |n: i64| (2 * n, 2 * n);
    match backbone {
        Backbone::EfficientnetLite0 => {
            let same = |x: i64, s: i64| (x + s - 1) / s;
            let (mut h, mut w) = (same(h, 2), same(w, 2));
            push("Stem", Shape::Map(32, h, w), 3 * 32 * 9 + bn(32).0, bn(32).1);
            for (repeats, k, stride, e, cin, cout) in LITE0_STAGES {
                for r in 0..repeats {
                    let (cin, s) = if r == 0 { (cin, stride) } else { (cout, 1) };
                    let mid = cin * e;
                    let expand = if e != 1 { cin * mid + bn(mid).0 } else { 0 };
                    let trainable = expand + mid * k * k + bn(mid).0 + mid * cout + bn(cout).0;
                    let buffers = if e != 1 { bn(mid).1 } else { 0 } + bn(mid).1 + bn(cout).1;
                    (h, w) = (same(h, s), same(w, s));
                    push("MBConv", Shape::Map(cout, h, w), trainable, buffers);
                }
            }
            push("ConvHead", Shape::Map(1280, h, w), 320 * 1280 + bn(1280).0, bn(1280).1);
        }
        _ => {
            let down = |x: i64, s: i64| (x - 1) / s + 1;
            let (mut h, mut w) = (down(h, 2), down(w, 2));
            push("Conv7x7", Shape::Map(64, h, w), 3 * 64 * 49 + bn(64).0, bn(64).1);
            (h, w) = (down(h, 2), down(w, 2));
            push("MaxPool2d", Shape::Map(64, h, w), 0, 0);
            let (blocks, bottleneck) = resnet_layout(backbone);
            let expansion = if bottleneck { 4 } else { 1 };
            let mut cin = 64;
            for (stage, (&n, planes)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
                for b in 0..n {
                    let s = if b == 0 && stage > 0 { 2 } else { 1 };
                    let cout = planes * expansion;
                    let convs = if bottleneck {
                        cin * planes + planes * planes * 9 + planes * cout
                    } else {
                        cin * planes * 9 + planes * planes * 9
                    };
                    let norms = if bottleneck { 2 * planes + cout } else { 2 * planes };
                    let downsample = s != 1 || cin != cout;
                    let (ds_conv, ds_bn) = if downsample { (cin * cout, cout) } else { (0, 0) };
                    (h, w) = (down(h, s), down(w, s));
                    let name = if bottleneck { "Bottleneck" } else { "BasicBlock" };
                    push(name, Shape::Map(cout, h, w), convs + ds_conv + 2 * (norms + ds_bn), 2 * (norms + ds_bn));
                    cin = cout;
                }
            }
        }
    }
    push("GlobalAvgPool2d", Shape::Flat(backbone.features()), 0, 0);
    Ok(rows)
}

/// Builds the backbone under `p` (the var store's root, so that names match the
/// original's). `frozen`, when set, keeps its batch norms in eval mode and turns
/// stochastic depth off, as fastai's frozen body.
pub(crate) fn build(backbone: Backbone, p: &nn::Path, frozen: Arc<AtomicBool>) -> BackboneNet {
    let body = match backbone {
        Backbone::EfficientnetLite0 => Body::Lite(Box::new(Lite0::new(p))),
        _ => {
            let (blocks, bottleneck) = resnet_layout(backbone);
            Body::Resnet(Box::new(Resnet::new(p, blocks, bottleneck)))
        }
    };
    BackboneNet { body, frozen }
}

/// A built backbone: images in, pooled features out.
#[derive(Debug)]
pub struct BackboneNet {
    body: Body,
    frozen: Arc<AtomicBool>,
}

#[derive(Debug)]
enum Body {
    Lite(Box<Lite0>),
    Resnet(Box<Resnet>),
}

impl BackboneNet {
    /// The last feature maps, before the global pooling (what Grad-CAM looks at).
    pub fn maps_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let train = train && !self.frozen.load(Ordering::Relaxed);
        match &self.body {
            Body::Lite(net) => net.forward_t(xs, train),
            Body::Resnet(net) => net.forward_t(xs, train),
        }
    }
}

impl ModuleT for BackboneNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.maps_t(xs, train).adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }
}

/// A backbone's body as one layer of a [`crate::Network`]: images in, maps out.
#[derive(Debug)]
pub(crate) struct BackboneMaps(pub(crate) BackboneNet);

impl ModuleT for BackboneMaps {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.0.maps_t(xs, train)
    }
}

fn batch_norm(p: nn::Path, n: i64, (momentum, eps): (f64, f64)) -> nn::BatchNorm {
    nn::batch_norm2d(p, n, nn::BatchNormConfig { momentum, eps, ..Default::default() })
}

/// A bias-free convolution initialised as PyTorch's default (Kaiming uniform, a =
/// sqrt(5)): the weights are replaced when pretrained ones load.
fn conv(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64, groups: i64) -> nn::Conv2D {
    let fan_in = (cin / groups) * k * k;
    let bound = 1.0 / (fan_in as f64).sqrt();
    let cfg = nn::ConvConfig {
        stride,
        padding,
        groups,
        bias: false,
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        ..Default::default()
    };
    nn::conv2d(p, cin, cout, k, cfg)
}

/// TensorFlow's "SAME" padding of `efficientnet-lite-pytorch`'s
/// `Conv2dDynamicSamePadding`: output `ceil(in / stride)`, the odd pixel of padding
/// at the bottom and right. At 224x224 it equals the static padding the original
/// builds for its 224 input size.
fn same_pad(xs: &Tensor, k: i64, stride: i64) -> Tensor {
    let size = xs.size();
    let pad = |x: i64| (((x + stride - 1) / stride - 1) * stride + k - x).max(0);
    let (ph, pw) = (pad(size[2]), pad(size[3]));
    if ph == 0 && pw == 0 {
        return xs.shallow_clone();
    }
    xs.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
}

fn relu6(xs: Tensor) -> Tensor {
    xs.clamp(0.0, 6.0)
}

/// One inverted-residual block (`MBConvBlock` without squeeze-excite).
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

impl MbConv {
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

/// One MBConv block under `bp` with EfficientNet-Lite's names and batch-norm settings;
/// `drop` is its drop-connect rate in training. Also the `inverted_residual` layer.
pub(crate) fn inverted_residual(bp: &nn::Path, cin: i64, cout: i64, e: i64, k: i64, s: i64, drop: f64) -> MbConv {
    let mid = cin * e;
    let expand =
        (e != 1).then(|| (conv(bp / "_expand_conv", cin, mid, 1, 1, 0, 1), batch_norm(bp / "_bn0", mid, LITE_BN)));
    MbConv {
        expand,
        depthwise: conv(bp / "_depthwise_conv", mid, mid, k, s, 0, mid),
        bn1: batch_norm(bp / "_bn1", mid, LITE_BN),
        project: conv(bp / "_project_conv", mid, cout, 1, 1, 0, 1),
        bn2: batch_norm(bp / "_bn2", cout, LITE_BN),
        kernel: k,
        stride: s,
        skip: s == 1 && cin == cout,
        drop,
    }
}

impl nn::ModuleT for MbConv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        MbConv::forward_t(self, xs, train)
    }
}

/// torchvision's `BasicBlock` (or `Bottleneck`) of `planes` under `bp`, with its
/// names; also the `bottleneck` layer.
pub(crate) fn resnet_block(bp: &nn::Path, cin: i64, planes: i64, s: i64, bottleneck: bool) -> ResBlock {
    let cout = if bottleneck { planes * 4 } else { planes };
    let pair = |name: usize, cin: i64, cout: i64, k: i64, s: i64| {
        let c = conv(bp / format!("conv{name}"), cin, cout, k, s, k / 2, 1);
        (c, batch_norm(bp / format!("bn{name}"), cout, RESNET_BN))
    };
    let convs = if bottleneck {
        vec![pair(1, cin, planes, 1, 1), pair(2, planes, planes, 3, s), pair(3, planes, cout, 1, 1)]
    } else {
        vec![pair(1, cin, planes, 3, s), pair(2, planes, planes, 3, 1)]
    };
    let downsample = (s != 1 || cin != cout).then(|| {
        let dp = bp / "downsample";
        (conv(&dp / 0, cin, cout, 1, s, 0, 1), batch_norm(&dp / 1, cout, RESNET_BN))
    });
    ResBlock { convs, downsample }
}

impl nn::ModuleT for ResBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        ResBlock::forward_t(self, xs, train)
    }
}

/// EfficientNet-Lite0's convolutions (its `extract_features`).
#[derive(Debug)]
struct Lite0 {
    stem: nn::Conv2D,
    bn0: nn::BatchNorm,
    blocks: Vec<MbConv>,
    head: nn::Conv2D,
    bn1: nn::BatchNorm,
}

impl Lite0 {
    fn new(p: &nn::Path) -> Self {
        let total: i64 = LITE0_STAGES.iter().map(|s| s.0).sum();
        let mut blocks = vec![];
        for (repeats, k, stride, e, cin, cout) in LITE0_STAGES {
            for r in 0..repeats {
                let (cin, s) = if r == 0 { (cin, stride) } else { (cout, 1) };
                let drop = 0.2 * blocks.len() as f64 / total as f64;
                blocks.push(inverted_residual(&(p / "_blocks" / blocks.len()), cin, cout, e, k, s, drop));
            }
        }
        Lite0 {
            stem: conv(p / "_conv_stem", 3, 32, 3, 2, 0, 1),
            bn0: batch_norm(p / "_bn0", 32, LITE_BN),
            blocks,
            head: conv(p / "_conv_head", 320, 1280, 1, 1, 0, 1),
            bn1: batch_norm(p / "_bn1", 1280, LITE_BN),
        }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = relu6(same_pad(xs, 3, 2).apply(&self.stem).apply_t(&self.bn0, train));
        for block in &self.blocks {
            x = block.forward_t(&x, train);
        }
        relu6(x.apply(&self.head).apply_t(&self.bn1, train))
    }
}

/// torchvision's `BasicBlock` or `Bottleneck` (stride on the 3x3, "ResNet v1.5").
#[derive(Debug)]
pub(crate) struct ResBlock {
    convs: Vec<(nn::Conv2D, nn::BatchNorm)>,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl ResBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut x = xs.shallow_clone();
        for (i, (conv, bn)) in self.convs.iter().enumerate() {
            x = x.apply(conv).apply_t(bn, train);
            if i < last {
                x = x.relu();
            }
        }
        let identity = match &self.downsample {
            Some((conv, bn)) => xs.apply(conv).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (x + identity).relu()
    }
}

/// torchvision's ResNet up to its average pooling.
#[derive(Debug)]
struct Resnet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    blocks: Vec<ResBlock>,
}

impl Resnet {
    fn new(p: &nn::Path, layout: [i64; 4], bottleneck: bool) -> Self {
        let expansion = if bottleneck { 4 } else { 1 };
        let mut cin = 64;
        let mut blocks = vec![];
        for (stage, (&n, planes)) in layout.iter().zip([64, 128, 256, 512]).enumerate() {
            for b in 0..n {
                let s = if b == 0 && stage > 0 { 2 } else { 1 };
                blocks.push(resnet_block(&(p / format!("layer{}", stage + 1) / b), cin, planes, s, bottleneck));
                cin = planes * expansion;
            }
        }
        Resnet { conv1: conv(p / "conv1", 3, 64, 7, 2, 3, 1), bn1: batch_norm(p / "bn1", 64, RESNET_BN), blocks }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for block in &self.blocks {
            x = block.forward_t(&x, train);
        }
        x
    }
}
