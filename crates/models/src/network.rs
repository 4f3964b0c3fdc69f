//! Layer specs -> shape-checked plan -> tch module.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::error::{Error, Result};
use crate::layers::{self, BuildCx, PlanCx};
use crate::spec::{Backbone, Head, HeadName, LayerSpec, ModelConfig};
use crate::summary::{LayerRow, Shape};

/// Checks every layer against the shape it receives and computes output shapes and
/// parameter counts, without touching libtorch.
pub fn plan(cfg: &ModelConfig, input: Shape, classes: i64) -> Result<Vec<LayerRow>> {
    let (layers, classes) = head_layers(cfg, classes)?;
    plan_layers(cfg, &layers, input, classes)
}

/// [`plan`] of the layers [`head_layers`] gave: the backbone's rows, then each layer's
/// on the shape the one before gives.
fn plan_layers(cfg: &ModelConfig, layers: &[LayerSpec], input: Shape, classes: i64) -> Result<Vec<LayerRow>> {
    let mut rows = match cfg.backbone {
        Some(b) => crate::backbone::plan(b, input)?,
        None => vec![],
    };
    let offset = rows.len();
    let mut shape = rows.last().map_or(input, |r| r.output);
    for (index, layer) in layers.iter().enumerate() {
        let planned = layers::plan(layer, shape, PlanCx { index, classes }).map_err(|reason| Error::Layer {
            index,
            kind: layer.kind(),
            reason,
        })?;
        shape = planned.output;
        rows.push(planned.row(offset + index + 1));
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
pub(crate) fn head_layers(cfg: &ModelConfig, classes: i64) -> Result<(Vec<LayerSpec>, i64)> {
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
        if let Some((weight, k)) = &self.whiten {
            layers::whiten::fit(weight, *k, xs, eps);
        }
    }
}

/// Builds the network under `p`, for inputs of shape `input` and `classes` outputs.
/// Variables are named `<kind><index>`, e.g. `conv0.weight`, `batchnorm1.running_mean`.
pub fn build(p: &nn::Path, cfg: &ModelConfig, input: Shape, classes: i64) -> Result<Network> {
    let (layers, outputs) = head_layers(cfg, classes)?;
    let rows = plan_layers(cfg, &layers, input, outputs)?;
    let mut module: Vec<(Box<dyn ModuleT>, usize)> = vec![];
    let mut whiten = None;
    let mut cx = BuildCx { init: cfg.init, dirac: cfg.dirac, whiten: &mut whiten };
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
            module.push((Box::new(layers::pooling::global()), offset - 1));
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
        let built = layers::build(layer, &(p / name.as_str()), shape, row.output, &mut cx);
        module.push((built, offset + index));
        shape = row.output;
    }
    let channels_last = AtomicBool::new(false);
    Ok(Network { rows, input, layers: module, whiten, backbone: cfg.backbone, head_names, frozen, channels_last })
}
