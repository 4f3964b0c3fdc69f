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
use crate::layers::inverted_residual::{self, relu6, same_pad, MbConv, LITE_BN};
use crate::layers::residual::{self, ResBlock, RESNET_BN};
use crate::layers::{block_bn, block_conv, bn_counts, bottleneck, Planned};
use crate::spec::Backbone;
use crate::summary::{LayerRow, Shape};

/// EfficientNet-Lite0's stages: (repeats, kernel, stride, expansion, in, out), as
/// `efficientnet_lite_builder.py`'s `r1_k3_s11_e1_i32_o16`, ... strings.
pub(crate) const LITE0_STAGES: [(i64, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// ResNet's blocks per stage and whether they are bottlenecks.
pub(crate) fn resnet_layout(backbone: Backbone) -> ([i64; 4], bool) {
    match backbone {
        Backbone::Resnet18 => ([2, 2, 2, 2], false),
        Backbone::Resnet34 => ([3, 4, 6, 3], false),
        _ => ([3, 4, 6, 3], true),
    }
}

/// The layer table of `backbone` on an `input` map, without libtorch: one row per
/// stem, block and head convolution, then the pooling. The blocks' rows are their
/// layer files' (one formula for each block's shapes).
pub(crate) fn plan(backbone: Backbone, input: Shape) -> Result<Vec<LayerRow>> {
    let (c, h, w) = input
        .map()
        .map_err(|_| Error::Invalid(format!("backbone {} needs images, got flat features", backbone.name())))?;
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
    let mut rows: Vec<LayerRow> = vec![];
    let mut push = |planned: Planned| rows.push(planned.row(rows.len() + 1));
    let conv_bn = |name, cin: i64, cout: i64, k: i64, output| {
        let (weights, stats) = bn_counts(cout);
        Planned { name, output, trainable: cin * cout * k * k + weights, non_trainable: stats }
    };
    let last = match backbone {
        Backbone::EfficientnetLite0 => {
            let same = |x: i64, s: i64| (x + s - 1) / s;
            let (h, w) = (same(h, 2), same(w, 2));
            push(conv_bn("Stem", 3, 32, 3, Shape::Map(32, h, w)));
            let mut at = (h, w);
            for (repeats, k, stride, e, cin, cout) in LITE0_STAGES {
                for r in 0..repeats {
                    let (cin, s) = if r == 0 { (cin, stride) } else { (cout, 1) };
                    let block = inverted_residual::counts(cin, cout, e, k, s, at);
                    at = block.output.map().map_or(at, |(_, h, w)| (h, w));
                    push(Planned { name: "MBConv", ..block });
                }
            }
            push(conv_bn("ConvHead", 320, 1280, 1, Shape::Map(1280, at.0, at.1)));
            1280
        }
        _ => {
            let down = |x: i64, s: i64| (x - 1) / s + 1;
            let (h, w) = (down(h, 2), down(w, 2));
            push(conv_bn("Conv7x7", 3, 64, 7, Shape::Map(64, h, w)));
            let (h, w) = (down(h, 2), down(w, 2));
            push(Planned { name: "MaxPool2d", output: Shape::Map(64, h, w), trainable: 0, non_trainable: 0 });
            let (blocks, bottleneck) = resnet_layout(backbone);
            let expansion = if bottleneck { 4 } else { 1 };
            let (mut cin, mut at) = (64, (h, w));
            for (stage, (&n, planes)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
                for b in 0..n {
                    let s = if b == 0 && stage > 0 { 2 } else { 1 };
                    let cout = planes * expansion;
                    let block = match bottleneck {
                        true => bottleneck::counts(cin, cout, s, at),
                        false => residual::basic("BasicBlock", cin, cout, s, at),
                    };
                    at = block.output.map().map_or(at, |(_, h, w)| (h, w));
                    push(block);
                    cin = cout;
                }
            }
            cin
        }
    };
    push(Planned { name: "GlobalAvgPool2d", output: Shape::Flat(last), trainable: 0, non_trainable: 0 });
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
                blocks.push(inverted_residual::block(&(p / "_blocks" / blocks.len()), cin, cout, e, k, s, drop));
            }
        }
        Lite0 {
            stem: block_conv(p / "_conv_stem", 3, 32, 3, 2, 0, 1),
            bn0: block_bn(p / "_bn0", 32, LITE_BN),
            blocks,
            head: block_conv(p / "_conv_head", 320, 1280, 1, 1, 0, 1),
            bn1: block_bn(p / "_bn1", 1280, LITE_BN),
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
                let bp = p / format!("layer{}", stage + 1) / b;
                blocks.push(match bottleneck {
                    true => bottleneck::block(&bp, cin, planes, s),
                    false => residual::basic_block(&bp, cin, planes, s),
                });
                cin = planes * expansion;
            }
        }
        let (conv1, bn1) = (block_conv(p / "conv1", 3, 64, 7, 2, 3, 1), block_bn(p / "bn1", 64, RESNET_BN));
        Resnet { conv1, bn1, blocks }
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
