//! Layer specs -> shape-checked plan -> tch module.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::spec::Backbone;
use crate::spec::{Head, HeadName, InitScheme, LayerSpec, ModelConfig};
use crate::summary::{LayerRow, Shape};

/// Checks every layer against the shape it receives and computes output shapes and
/// parameter counts, without touching libtorch.
pub fn plan(cfg: &ModelConfig, input: Shape, classes: i64) -> Result<Vec<LayerRow>> {
    let (layers, classes) = head_layers(cfg, classes)?;
    plan_layers(cfg, &layers, input, classes)
}

/// [`plan`] of the layers [`head_layers`] gave.
fn plan_layers(cfg: &ModelConfig, layers: &[LayerSpec], input: Shape, classes: i64) -> Result<Vec<LayerRow>> {
    let mut rows = match cfg.backbone {
        Some(b) => crate::backbone::plan(b, input)?,
        None => vec![],
    };
    let offset = rows.len();
    let mut shape = rows.last().map_or(input, |r| r.output);
    for (index, layer) in layers.iter().enumerate() {
        let fail = |reason: String| Error::Layer { index, kind: layer.kind(), reason };
        let (name, out, trainable, non_trainable) = match (*layer, shape) {
            (LayerSpec::Conv { out, kernel, stride, padding, bias, groups }, Shape::Map(c, h, w)) => {
                if out < 1 || kernel < 1 || stride < 1 || padding < 0 {
                    return Err(fail(format!("needs out, kernel, stride >= 1 and padding >= 0, got {layer:?}")));
                }
                if groups < 1 || c % groups != 0 || out % groups != 0 {
                    return Err(fail(format!(
                        "groups = {groups} must divide both the {c} input and {out} output channels"
                    )));
                }
                let side = |x: i64| (x + 2 * padding - kernel) / stride + 1;
                if h + 2 * padding < kernel || w + 2 * padding < kernel {
                    return Err(fail(format!("kernel {kernel} is larger than the padded {h}x{w} input")));
                }
                let params = out * (c / groups) * kernel * kernel + if bias { out } else { 0 };
                ("Conv2d", Shape::Map(out, side(h), side(w)), params, 0)
            }
            (LayerSpec::Batchnorm { momentum, eps, .. }, _)
                if !(0.0..=1.0).contains(&momentum) || eps.is_nan() || eps <= 0.0 =>
            {
                return Err(fail(format!("momentum {momentum} must be in [0, 1] and eps {eps} above 0")));
            }
            (LayerSpec::Batchnorm { scale, .. }, Shape::Map(c, ..)) => {
                ("BatchNorm2d", shape, if scale { 2 * c } else { c }, 2 * c)
            }
            (LayerSpec::Batchnorm { scale, .. }, Shape::Flat(n)) => {
                ("BatchNorm1d", shape, if scale { 2 * n } else { n }, 2 * n)
            }
            (LayerSpec::Whiten { kernel }, Shape::Map(c, h, w)) => {
                if index != 0 {
                    return Err(fail("must be the first layer (it is fitted to the input images)".into()));
                }
                if kernel < 1 || kernel > h || kernel > w {
                    return Err(fail(format!("kernel {kernel} must be in 1..={} for a {h}x{w} input", h.min(w))));
                }
                let out = 2 * c * kernel * kernel;
                // The weights are frozen after fitting: only the bias trains.
                ("Whiten", Shape::Map(out, h - kernel + 1, w - kernel + 1), out, out * c * kernel * kernel)
            }
            (LayerSpec::Scale { by }, _) => {
                if !by.is_finite() {
                    return Err(fail(format!("by = {by} must be a finite number")));
                }
                ("Scale", shape, 0, 0)
            }
            (LayerSpec::Relu, _) => ("ReLU", shape, 0, 0),
            (LayerSpec::Relu6, _) => ("ReLU6", shape, 0, 0),
            (LayerSpec::Elu, _) => ("ELU", shape, 0, 0),
            (LayerSpec::LeakyRelu, _) => ("LeakyReLU", shape, 0, 0),
            (LayerSpec::Gelu, _) => ("GELU", shape, 0, 0),
            (LayerSpec::Maxpool { kernel, stride } | LayerSpec::Avgpool { kernel, stride }, Shape::Map(c, h, w)) => {
                let stride = stride.unwrap_or(kernel);
                if kernel < 1 || stride < 1 {
                    return Err(fail(format!("needs kernel and stride >= 1, got {layer:?}")));
                }
                if h < kernel || w < kernel {
                    return Err(fail(format!("cannot pool a {h}x{w} map with kernel {kernel}")));
                }
                let name = if matches!(layer, LayerSpec::Maxpool { .. }) { "MaxPool2d" } else { "AvgPool2d" };
                (name, Shape::Map(c, (h - kernel) / stride + 1, (w - kernel) / stride + 1), 0, 0)
            }
            (LayerSpec::GlobalAvgPool, Shape::Map(c, ..)) => ("GlobalAvgPool2d", Shape::Flat(c), 0, 0),
            (LayerSpec::Residual { out, stride }, Shape::Map(c, h, w)) => {
                if out < 1 || stride < 1 {
                    return Err(fail(format!("needs out and stride >= 1, got {layer:?}")));
                }
                let side = |x: i64| (x - 1) / stride + 1;
                let project = stride != 1 || c != out;
                let convs = out * c * 9 + out * out * 9 + if project { out * c } else { 0 };
                let bns = if project { 3 } else { 2 } * 2 * out;
                ("ResidualBlock", Shape::Map(out, side(h), side(w)), convs + bns, bns)
            }
            (LayerSpec::InvertedResidual { out, expand, kernel, stride }, Shape::Map(c, h, w)) => {
                if out < 1 || expand < 1 || kernel < 1 || stride < 1 {
                    return Err(fail(format!("needs out, expand, kernel and stride >= 1, got {layer:?}")));
                }
                let side = |x: i64| (x + stride - 1) / stride;
                let mid = c * expand;
                let expansion = if expand == 1 { 0 } else { c * mid + 2 * mid };
                let trainable = expansion + mid * kernel * kernel + 2 * mid + mid * out + 2 * out;
                let buffers = 2 * (if expand == 1 { 0 } else { mid } + mid + out);
                ("InvertedResidual", Shape::Map(out, side(h), side(w)), trainable, buffers)
            }
            (LayerSpec::Bottleneck { out, stride }, Shape::Map(c, h, w)) => {
                if out < 4 || out % 4 != 0 || stride < 1 {
                    return Err(fail(format!("needs out a multiple of 4 and stride >= 1, got {layer:?}")));
                }
                let width = out / 4;
                let side = |x: i64| (x - 1) / stride + 1;
                let project = stride != 1 || c != out;
                let convs = c * width + width * width * 9 + width * out + if project { c * out } else { 0 };
                let channels = 2 * width + out + if project { out } else { 0 };
                ("Bottleneck", Shape::Map(out, side(h), side(w)), convs + 2 * channels, 2 * channels)
            }
            (LayerSpec::Dropout { p }, _) => {
                if !(0.0..1.0).contains(&p) {
                    return Err(fail(format!("p = {p} is outside [0, 1)")));
                }
                ("Dropout", shape, 0, 0)
            }
            (LayerSpec::Flatten, _) => ("Flatten", Shape::Flat(shape.numel()), 0, 0),
            (LayerSpec::Linear { out, bias }, Shape::Flat(n)) => {
                let out = out.unwrap_or(classes);
                if out < 1 {
                    return Err(fail(format!("out = {out} must be >= 1")));
                }
                ("Linear", Shape::Flat(out), n * out + if bias { out } else { 0 }, 0)
            }
            (_, Shape::Flat(n)) => {
                return Err(fail(format!("needs a channels x height x width map but gets {n} flat features")))
            }
            (_, Shape::Map(c, h, w)) => {
                return Err(fail(format!("needs flat features, gets a {c}x{h}x{w} map (add a flatten layer)")))
            }
        };
        shape = out;
        rows.push(LayerRow { name: format!("{name}-{}", offset + index + 1), output: out, trainable, non_trainable });
    }
    if shape != Shape::Flat(classes) {
        return Err(Error::Invalid(format!(
            "the last layer gives {:?} per sample, the data has {classes} classes: end with a linear layer",
            shape.dims()
        )));
    }
    Ok(rows)
}

/// The layers after the backbone (or the whole list without one) and the outputs
/// the network ends with: a backbone without `layers` gets its `head` (dropout and a
/// linear layer per class, or the 1000 ImageNet classes).
fn head_layers(cfg: &ModelConfig, classes: i64) -> Result<(Vec<LayerSpec>, i64)> {
    let Some(backbone) = cfg.backbone else {
        if cfg.layers.is_empty() {
            return Err(Error::Invalid("`layers` is empty".into()));
        }
        return Ok((cfg.layers.clone(), classes));
    };
    if !cfg.layers.is_empty() {
        if cfg.head.is_some() {
            return Err(Error::Invalid("give `head` or `layers` after a backbone, not both".into()));
        }
        return Ok((cfg.layers.clone(), classes));
    }
    let (dropout, classes) = match cfg.head {
        None => (backbone.default_dropout(), classes),
        Some(Head::New { dropout }) => (dropout, classes),
        Some(Head::Named(HeadName::Imagenet)) => (backbone.default_dropout(), 1000),
    };
    let linear = LayerSpec::Linear { out: None, bias: true };
    let layers = if dropout > 0.0 { vec![LayerSpec::Dropout { p: dropout }, linear] } else { vec![linear] };
    Ok((layers, classes))
}

/// A built network: its layer table and its layers, which run one after another.
#[derive(Debug)]
pub struct Network {
    pub rows: Vec<LayerRow>,
    pub input: Shape,
    /// The layers, each with the index of the row whose output it gives (a backbone
    /// is two: its body, whose output is its last map row, and the global pooling).
    layers: Vec<(Box<dyn ModuleT>, usize)>,
    /// The frozen weight and kernel of a `whiten` first layer.
    whiten: Option<(Tensor, i64)>,
    /// The pretrained architecture the layers follow, if any.
    pub backbone: Option<Backbone>,
    /// The first name component of each head variable after a backbone (`_fc`,
    /// `linear1`, ...).
    head_names: Vec<String>,
    /// Whether the backbone runs frozen (batch norms in eval mode).
    frozen: Arc<AtomicBool>,
    /// Whether inputs go in channels-last order, see [`Network::set_channels_last`].
    channels_last: AtomicBool,
}

/// `x` (`[N, C, H, W]`) with channels-last strides, as `x.contiguous(memory_format=
/// torch.channels_last)`: a copy unless it already has them.
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

impl ModuleT for Network {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_range(xs, 0..self.layers.len(), train)
    }
}

impl Network {
    /// The rows (0-based indices into [`Network::rows`]) after which the network can be
    /// cut: every row but those inside a pretrained backbone's body.
    pub fn cut_points(&self) -> Vec<usize> {
        self.layers.iter().map(|(_, row)| *row).collect()
    }

    /// The layer that ends at row `row` (see [`Network::cut_points`]).
    fn layer_ending_at(&self, row: usize) -> Option<usize> {
        self.layers.iter().position(|(_, r)| *r == row)
    }

    /// Runs the layers `range` (indices into the layer list) on `xs`.
    fn forward_range(&self, xs: &Tensor, range: std::ops::Range<usize>, train: bool) -> Tensor {
        let mut x = match range.start == 0 && xs.dim() == 4 && self.channels_last.load(Ordering::Relaxed) {
            true => channels_last(xs),
            false => xs.shallow_clone(),
        };
        for (layer, _) in &self.layers[range] {
            x = layer.forward_t(&x, train);
        }
        x
    }

    /// Cuts the network after row `row`: the output of the layers up to it, and a
    /// function that runs the rest on (a tensor like) that output. `None` when the
    /// row is not a cut point.
    pub fn split_at<'a>(
        &'a self,
        xs: &Tensor,
        row: usize,
        train: bool,
    ) -> Option<(Tensor, impl Fn(&Tensor) -> Tensor + 'a)> {
        let at = self.layer_ending_at(row)?;
        let head = self.forward_range(xs, 0..at + 1, train);
        let end = self.layers.len();
        Some((head, move |x: &Tensor| self.forward_range(x, at + 1..end, train)))
    }

    /// Grad-CAM's default layer: the last layer that holds a convolution and gives a
    /// map (a conv, a residual block, a backbone's body), with the batch norm and
    /// activation that follow it, as Keras' Grad-CAM example takes the last
    /// convolution's activation (`block14_sepconv2_act`). Its row, or `None` without one.
    pub fn last_conv_block_row(&self) -> Option<usize> {
        const CONVOLUTIONAL: [&str; 5] = ["Conv2d", "ResidualBlock", "InvertedResidual", "Bottleneck", "Whiten"];
        const ELEMENTWISE: [&str; 8] = ["BatchNorm2d", "ReLU", "ReLU6", "ELU", "LeakyReLU", "GELU", "Dropout", "Scale"];
        let kind = |r: usize| self.rows[r].name.rsplit_once('-').map_or("", |(k, _)| k).to_owned();
        let is_map = |r: usize| matches!(self.rows[r].output, Shape::Map(..));
        let cuts = self.cut_points();
        let last = cuts
            .iter()
            .rposition(|&r| is_map(r) && (CONVOLUTIONAL.contains(&kind(r).as_str()) || self.in_backbone_body(r)))?;
        let block = cuts[last + 1..].iter().take_while(|&&r| is_map(r) && ELEMENTWISE.contains(&kind(r).as_str()));
        Some(block.last().copied().unwrap_or(cuts[last]))
    }

    /// Whether row `row` is the output of a pretrained backbone's body.
    fn in_backbone_body(&self, row: usize) -> bool {
        self.backbone.is_some() && self.layer_ending_at(row) == Some(0)
    }

    /// Whether the variable `name` belongs to the backbone (not its head); false
    /// without a backbone.
    pub fn in_backbone(&self, name: &str) -> bool {
        self.backbone.is_some() && !self.head_names.iter().any(|h| name.split('.').next() == Some(h))
    }

    /// The head's variable name prefixes after a backbone.
    pub fn head_names(&self) -> &[String] {
        &self.head_names
    }

    /// Keeps every 4-d weight of `vs` (the network's variables), and from now on every
    /// 4-d input, in channels-last memory order: `model.to(memory_format=
    /// torch.channels_last)` and the same for each batch. Values, names and shapes do
    /// not change, only the strides; cuDNN's tensor-core convolutions read this layout
    /// without transposing.
    pub fn set_channels_last(&self, vs: &tch::nn::VarStore) {
        tch::no_grad(|| {
            for (_, mut var) in vs.variables() {
                if var.dim() == 4 {
                    let nhwc = channels_last(&var);
                    var.set_data(&nhwc);
                }
            }
        });
        self.channels_last.store(true, Ordering::Relaxed);
    }

    /// Runs the backbone frozen (its batch norms in eval mode, no stochastic depth)
    /// or not; the caller stops its gradients.
    pub fn set_backbone_frozen(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::Relaxed);
    }

    pub fn trainable_params(&self) -> i64 {
        self.rows.iter().map(|r| r.trainable).sum()
    }

    pub fn non_trainable_params(&self) -> i64 {
        self.rows.iter().map(|r| r.non_trainable).sum()
    }

    /// Whether the first layer is a `whiten` layer that wants [`Network::fit_whitening`].
    pub fn has_whitening(&self) -> bool {
        self.whiten.is_some()
    }

    /// Sets a `whiten` first layer's weights from normalized training images `xs`
    /// (`[N, C, H, W]`, a few thousand are plenty), as airbench's
    /// `init_whitening_conv`: the eigenvectors of the patches' covariance scaled by
    /// `1 / sqrt(eigenvalue + eps)`, followed by their negatives. No-op without one.
    pub fn fit_whitening(&self, xs: &Tensor, eps: f64) {
        let Some((weight, k)) = &self.whiten else { return };
        let k = *k;
        let c = xs.size()[1];
        let d = c * k * k;
        tch::no_grad(|| {
            let xs = xs.to_device(weight.device()).to_kind(tch::Kind::Double);
            // [N, C, H', W', k, k] -> rows of C*k*k values in (channel, row, column) order.
            let patches = xs.unfold(2, k, 1).unfold(3, k, 1).permute([0, 2, 3, 1, 4, 5]).reshape([-1, d]);
            let n = patches.size()[0] as f64;
            let covariance = patches.tr().matmul(&patches) / n;
            let (values, vectors) = covariance.linalg_eigh("U");
            // Largest eigenvalue first; eigenvectors are the columns.
            let values = values.flip([0]);
            let vectors = vectors.flip([1]).tr();
            let scaled = vectors / (values + eps).sqrt().unsqueeze(1);
            let filters = Tensor::cat(&[&scaled, &(-&scaled)], 0).reshape([2 * d, c, k, k]);
            let mut weight = weight.shallow_clone();
            weight.copy_(&filters.to_kind(weight.kind()));
        });
    }
}

/// Builds the network under `p`, for inputs of shape `input` and `classes` outputs.
/// Variables are named `<kind><index>`, e.g. `conv0.weight`, `batchnorm1.running_mean`.
pub fn build(p: &nn::Path, cfg: &ModelConfig, input: Shape, classes: i64) -> Result<Network> {
    let (layers, outputs) = head_layers(cfg, classes)?;
    let rows = plan_layers(cfg, &layers, input, outputs)?;
    let mut module: Vec<(Box<dyn ModuleT>, usize)> = vec![];
    let mut whiten = None;
    let frozen = Arc::new(AtomicBool::new(false));
    let mut shape = input;
    let mut head_names = vec![];
    let offset = match cfg.backbone {
        Some(b) => {
            let offset = rows.len() - layers.len();
            // The backbone's rows end with its last map and the global pooling.
            module.push((
                Box::new(crate::backbone::BackboneMaps(crate::backbone::build(b, p, frozen.clone()))),
                offset - 2,
            ));
            let pool = nn::func(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1));
            module.push((Box::new(pool), offset - 1));
            shape = Shape::Flat(b.features());
            offset
        }
        None => 0,
    };
    for (index, (layer, row)) in layers.iter().zip(&rows[offset..]).enumerate() {
        // The default head's classifier keeps the original's name (`_fc`, `fc`), so
        // that `head = "imagenet"` loads it.
        let name = match (cfg.backbone, layer) {
            (Some(b), LayerSpec::Linear { .. }) if cfg.layers.is_empty() => b.head_name().to_owned(),
            _ => format!("{}{index}", layer.kind()),
        };
        if cfg.backbone.is_some() {
            head_names.push(name.clone());
        }
        let lp = p / name.as_str();
        let built: Box<dyn ModuleT> = match (*layer, shape) {
            (LayerSpec::Conv { out, kernel, stride, padding, bias, groups }, Shape::Map(c, ..)) => {
                let (ws_init, bs_init) = inits(cfg.init, c / groups * kernel * kernel, out / groups * kernel * kernel);
                let conv = nn::ConvConfig { stride, padding, bias, groups, ws_init, bs_init, ..Default::default() };
                let conv = nn::conv2d(&lp, c, out, kernel, conv);
                if cfg.dirac {
                    set_dirac(&conv.ws);
                }
                Box::new(conv)
            }
            (LayerSpec::Batchnorm { scale: true, momentum, eps }, Shape::Map(c, ..)) => {
                Box::new(nn::batch_norm2d(&lp, c, bn_config(momentum, eps)))
            }
            (LayerSpec::Batchnorm { scale: true, momentum, eps }, Shape::Flat(n)) => {
                Box::new(nn::batch_norm1d(&lp, n, bn_config(momentum, eps)))
            }
            (LayerSpec::Batchnorm { scale: false, momentum, eps }, _) => {
                Box::new(ShiftOnlyBatchNorm::new(&lp, row.output, momentum, eps))
            }
            (LayerSpec::Whiten { kernel }, Shape::Map(c, ..)) => {
                let Shape::Map(out, ..) = row.output else { unreachable!("plan gives a map") };
                let weight = lp.zeros_no_train("weight", &[out, c, kernel, kernel]);
                let bias = lp.zeros("bias", &[out]);
                whiten = Some((weight.shallow_clone(), kernel));
                Box::new(nn::func(move |x| x.conv2d(&weight, Some(&bias), [1, 1], [0, 0], [1, 1], 1)))
            }
            (LayerSpec::Scale { by }, _) => Box::new(nn::func(move |x| x * by)),
            (LayerSpec::Relu, _) => Box::new(nn::func(|x| x.relu())),
            (LayerSpec::Relu6, _) => Box::new(nn::func(|x| x.clamp(0.0, 6.0))),
            (LayerSpec::Elu, _) => Box::new(nn::func(|x| x.elu())),
            (LayerSpec::LeakyRelu, _) => Box::new(nn::func(|x| x.leaky_relu())),
            (LayerSpec::Gelu, _) => Box::new(nn::func(|x| x.gelu("none"))),
            (LayerSpec::Maxpool { kernel, stride }, _) => {
                let s = stride.unwrap_or(kernel);
                Box::new(nn::func(move |x| x.max_pool2d([kernel, kernel], [s, s], [0, 0], [1, 1], false)))
            }
            (LayerSpec::Avgpool { kernel, stride }, _) => {
                let s = stride.unwrap_or(kernel);
                Box::new(nn::func(move |x| x.avg_pool2d([kernel, kernel], [s, s], [0, 0], false, true, None)))
            }
            (LayerSpec::GlobalAvgPool, _) => Box::new(nn::func(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))),
            (LayerSpec::Residual { out, stride }, Shape::Map(c, ..)) => {
                Box::new(ResidualBlock::new(&lp, c, out, stride, cfg.init))
            }
            (LayerSpec::InvertedResidual { out, expand, kernel, stride }, Shape::Map(c, ..)) => {
                Box::new(crate::backbone::inverted_residual(&lp, c, out, expand, kernel, stride, 0.0))
            }
            (LayerSpec::Bottleneck { out, stride }, Shape::Map(c, ..)) => {
                Box::new(crate::backbone::resnet_block(&lp, c, out / 4, stride, true))
            }
            (LayerSpec::Dropout { p }, _) => Box::new(nn::func_t(move |x, train| x.dropout(p, train))),
            (LayerSpec::Flatten, _) => Box::new(nn::func(|x| x.flatten(1, -1))),
            (LayerSpec::Linear { bias, .. }, _) => {
                let Shape::Flat(out) = row.output else { unreachable!("plan checked linear outputs") };
                let (ws_init, bs_init) = inits(cfg.init, shape.numel(), out);
                let linear = nn::LinearConfig { ws_init, bs_init: Some(bs_init), bias };
                Box::new(nn::linear(&lp, shape.numel(), out, linear))
            }
            _ => unreachable!("plan rejected layer {index} on {shape:?}"),
        };
        module.push((built, offset + index));
        shape = row.output;
    }
    let channels_last = AtomicBool::new(false);
    Ok(Network { rows, input, layers: module, whiten, backbone: cfg.backbone, head_names, frozen, channels_last })
}

/// Batch normalization with the scale fixed at 1 (PyTorch's `BatchNorm2d` with a
/// frozen weight): a learned shift and the running statistics, named as tch names them.
#[derive(Debug)]
struct ShiftOnlyBatchNorm {
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    eps: f64,
}

impl ShiftOnlyBatchNorm {
    fn new(p: &nn::Path, shape: Shape, momentum: f64, eps: f64) -> Self {
        let n = match shape {
            Shape::Map(c, ..) => c,
            Shape::Flat(n) => n,
        };
        ShiftOnlyBatchNorm {
            bias: p.zeros("bias", &[n]),
            running_mean: p.zeros_no_train("running_mean", &[n]),
            running_var: p.ones_no_train("running_var", &[n]),
            momentum,
            eps,
        }
    }
}

impl ModuleT for ShiftOnlyBatchNorm {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        Tensor::batch_norm(
            xs,
            None::<&Tensor>,
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            self.momentum,
            self.eps,
            true,
        )
    }
}

/// See [`LayerSpec::Residual`].
#[derive(Debug)]
struct ResidualBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    shortcut: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl ResidualBlock {
    fn new(p: &nn::Path, c: i64, out: i64, stride: i64, init: InitScheme) -> Self {
        let conv = |p: nn::Path, cin: i64, k: i64, stride: i64| {
            let (ws_init, _) = inits(init, cin * k * k, out * k * k);
            let cfg = nn::ConvConfig { stride, padding: k / 2, bias: false, ws_init, ..Default::default() };
            nn::conv2d(p, cin, out, k, cfg)
        };
        let shortcut = (stride != 1 || c != out).then(|| {
            (conv(p / "shortcut", c, 1, stride), nn::batch_norm2d(p / "shortcut_bn", out, bn_config(0.1, 1e-5)))
        });
        ResidualBlock {
            conv1: conv(p / "conv1", c, 3, stride),
            bn1: nn::batch_norm2d(p / "bn1", out, bn_config(0.1, 1e-5)),
            conv2: conv(p / "conv2", out, 3, 1),
            bn2: nn::batch_norm2d(p / "bn2", out, bn_config(0.1, 1e-5)),
            shortcut,
        }
    }
}

impl ModuleT for ResidualBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu().apply(&self.conv2).apply_t(&self.bn2, train);
        let skip = match &self.shortcut {
            Some((conv, bn)) => xs.apply(conv).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (ys + skip).relu()
    }
}

/// Weight and bias initialisers for a layer with these fans.
fn inits(scheme: InitScheme, fan_in: i64, fan_out: i64) -> (nn::Init, nn::Init) {
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

/// PyTorch's BatchNorm defaults: weight 1, bias 0 (tch's own default draws the weight
/// uniformly from [0, 1]).
fn bn_config(momentum: f64, eps: f64) -> nn::BatchNormConfig {
    nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), momentum, eps, ..Default::default() }
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
