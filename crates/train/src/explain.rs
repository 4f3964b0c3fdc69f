//! Grad-CAM (Selvaraju et al., 2017): where a trained network looks. The gradient of
//! a class's logit with respect to one layer's feature maps, averaged over each map,
//! weighs the maps; their weighted sum through a ReLU, upsampled bilinearly to the
//! input and scaled to [0, 1], is the heat map. The same computation as
//! pytorch-grad-cam's `GradCAM` (and `crates/cli/tests/gradcam_ref.py`, its check).

use cnnlab_models::{ModelKind, Network, Shape};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::predict::Predictor;

/// One image's Grad-CAM.
#[derive(Debug, Clone)]
pub struct GradCam {
    /// The class explained (the predicted one unless another was asked for).
    pub class: usize,
    /// The network's class probabilities for the image.
    pub probs: Vec<f32>,
    /// The layer's row in the layer table, 0-based (`Conv2d-9` is 8).
    pub row: usize,
    /// The layer's name in the layer table (`Conv2d-9`).
    pub layer: String,
    /// The heat map at the input's resolution, row-major `height x width`, in [0, 1].
    pub map: Vec<f32>,
    pub height: usize,
    pub width: usize,
}

impl GradCam {
    /// The pixel where the map peaks, `(x, y)` (the first on ties).
    pub fn peak(&self) -> (usize, usize) {
        let at = self.map.iter().enumerate().fold(0, |best, (i, &v)| if v > self.map[best] { i } else { best });
        (at % self.width, at / self.width)
    }
}

/// The 0-based row Grad-CAM looks at in `net`: `layer` (1-based, as the layer table
/// numbers rows: `Conv2d-9` is 9), else the last convolution's block (the conv with
/// its batch norm and activation, see [`Network::last_conv_block_row`]). The error
/// names the layers that can be chosen.
pub fn cam_layer(net: &Network, layer: Option<usize>) -> Result<usize> {
    let maps: Vec<usize> =
        net.cut_points().into_iter().filter(|&r| matches!(net.rows[r].output, Shape::Map(..))).collect();
    let choices = || maps.iter().map(|r| net.rows[*r].name.as_str()).collect::<Vec<_>>().join(", ");
    let Some(layer) = layer else {
        return net.last_conv_block_row().ok_or_else(|| Error::Invalid {
            key: "model.layers".into(),
            message: "the network has no convolution: Grad-CAM needs a layer that gives feature maps".into(),
        });
    };
    let bad = |message: String| Error::Invalid { key: format!("--layer {layer}"), message };
    let n = net.rows.len();
    if layer == 0 || layer > n {
        return Err(bad(format!("the network has layers 1 to {n}; feature-map layers: {}", choices())));
    }
    let row = &net.rows[layer - 1];
    if !maps.contains(&(layer - 1)) {
        let why = match row.output {
            Shape::Flat(_) => "gives flat features, not feature maps",
            Shape::Map(..) => "is inside the pretrained backbone",
        };
        return Err(bad(format!("{} {why}; choose one of {}", row.name, choices())));
    }
    Ok(layer - 1)
}

impl Predictor {
    /// Grad-CAM of one HWC image (`pixels`, the run's input shape) at `layer` (see
    /// [`cam_layer`]) for `class`, or the predicted class.
    pub fn grad_cam(&self, pixels: &[u8], layer: Option<usize>, class: Option<usize>) -> Result<GradCam> {
        if self.kind == ModelKind::OneVsRest {
            return Err(Error::Unsupported {
                key: "model.kind",
                message: "Grad-CAM of a one-vs-rest run is not supported (it is one network per class)".into(),
            });
        }
        let net = &self.nets[0].1;
        let row = cam_layer(net, layer)?;
        if let Some(c) = class.filter(|&c| c >= self.classes.len()) {
            return Err(Error::invalid("--class", format!("class {c} is not one of the run's {}", self.classes.len())));
        }
        let xs = self.norm.to_tensor(pixels);
        let (height, width) = (self.shape.height, self.shape.width);
        let (maps, rest) = tch::no_grad(|| net.split_at(&xs, row, false)).expect("cam_layer gives a cut point");
        let maps = maps.detach().set_requires_grad(true);
        let logits = rest(&maps);
        let probs = logits.softmax(-1, Kind::Float).get(0);
        let class = class.unwrap_or(i64::try_from(probs.argmax(0, false))? as usize);
        let score = logits.get(0).get(class as i64);
        let grads = Tensor::f_run_backward(&[score], &[&maps], false, false)?;
        let cam = tch::no_grad(|| {
            let weights = grads[0].mean_dim(&[2i64, 3][..], true, Kind::Float);
            let cam = (weights * &maps).sum_dim_intlist(1, true, Kind::Float).relu();
            let cam = cam.upsample_bilinear2d([height as i64, width as i64], false, None, None);
            let cam = &cam - cam.min();
            &cam / (cam.max() + 1e-7)
        });
        let to_vec = |t: &Tensor| Vec::<f32>::try_from(t.to_device(tch::Device::Cpu).flatten(0, -1));
        Ok(GradCam {
            class,
            probs: to_vec(&probs)?,
            row,
            layer: net.rows[row].name.clone(),
            map: to_vec(&cam)?,
            height,
            width,
        })
    }
}
