//! A trained run folder loaded for prediction: its network(s), normalizer and classes.

use std::path::Path;

use cnnlab_data::ImageShape;
use cnnlab_models::{build, ModelConfig, ModelKind, Network, Shape};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::batch::Normalizer;
use crate::config::Tta;
use crate::error::{Error, Result};
use crate::evaluate::tta_probabilities;
use crate::run_dir::{tch_reason, RunFiles};
use cnnlab_run::{files, RunDir, Weights};

/// The weights file of a model folder (`cnnlab export --format folder`), which
/// [`Predictor::load`] reads when the folder has no `last`/`best.safetensors`.
pub const MODEL_FOLDER_WEIGHTS: &str = "model.safetensors";

/// One network per class for one-vs-rest runs, else one.
#[derive(Debug)]
pub struct Predictor {
    pub(crate) nets: Vec<(nn::VarStore, Network)>,
    pub(crate) norm: Normalizer,
    pub(crate) kind: ModelKind,
    pub(crate) model: ModelConfig,
    pub classes: Vec<String>,
    pub shape: ImageShape,
}

impl Predictor {
    /// Loads the run folder `dir` trained with `model` on images of `shape`.
    pub fn load(
        dir: &Path,
        model: &ModelConfig,
        shape: ImageShape,
        classes: Vec<String>,
        weights: Weights,
    ) -> Result<Self> {
        let device = Device::cuda_if_available();
        let input = Shape::from(shape);
        let run = RunDir::new(dir);
        let load_one = |folder: RunDir, n_classes: i64| -> Result<(nn::VarStore, Network)> {
            let mut vs = nn::VarStore::new(device);
            let net = build(&vs.root(), model, input, n_classes)?;
            let mut path = folder.file(weights.file());
            // A model folder (`cnnlab export --format folder`) has one set of weights.
            if !path.exists() && folder.file(MODEL_FOLDER_WEIGHTS).exists() {
                path = folder.file(MODEL_FOLDER_WEIGHTS);
            }
            if !path.exists() {
                return Err(Error::MissingWeights { path });
            }
            let hint = match weights {
                Weights::Best => "; the final weights may be intact: without --best, last.safetensors",
                Weights::Last => "; the best epoch's may be intact: --best uses best.safetensors",
            };
            vs.load(&path).map_err(|e| Error::Weights { path: path.clone(), reason: tch_reason(&e), hint })?;
            Ok((vs, net))
        };
        let nets = match model.kind {
            ModelKind::Standard => vec![load_one(run.clone(), classes.len() as i64)?],
            ModelKind::OneVsRest => classes.iter().map(|c| load_one(run.member(c), 2)).collect::<Result<_>>()?,
        };
        // A one-vs-rest run's members share the normalizer (fitted to the same images).
        let norm_dir = if model.kind == ModelKind::OneVsRest { run.member(&classes[0]) } else { run };
        let norm = Normalizer::load(&norm_dir.file(files::NORMALIZER), shape, device)?;
        Ok(Predictor { nets, norm, kind: model.kind, model: model.clone(), classes, shape })
    }

    /// Class probabilities of `n` HWC images (one after another), row-major `n x classes`.
    pub fn predict(&self, pixels: &[u8]) -> Result<Vec<f32>> {
        self.predict_tta(pixels, Tta::None)
    }

    /// [`Predictor::predict`] averaged over the test-time augmentation `tta` (as
    /// training's final test evaluation does with the run's `train.tta`).
    pub fn predict_tta(&self, pixels: &[u8], tta: Tta) -> Result<Vec<f32>> {
        let xs = self.norm.to_tensor(pixels);
        let probs = tch::no_grad(|| match self.kind {
            ModelKind::Standard => tta_probabilities(&self.nets[0].1, &xs, tta),
            ModelKind::OneVsRest => {
                let cols: Vec<Tensor> =
                    self.nets.iter().map(|(_, net)| tta_probabilities(net, &xs, tta).select(1, 1)).collect();
                let p = Tensor::stack(&cols, 1);
                &p / p.sum_dim_intlist(1, true, Kind::Float).clamp_min(f64::from(f32::MIN_POSITIVE))
            }
        });
        Ok(Vec::<f32>::try_from(probs.to_device(Device::Cpu).flatten(0, -1))?)
    }
}

/// Writes the run folder `dir` of a pretrained classifier used as it is (`cnnlab
/// pretrained`): `config_text` (whose `[model]` is `model`, a backbone with its
/// original head), 224x224 RGB input, `classes`, ImageNet normalization, and the
/// weights at `weights` as best and last. Returns the tensors loaded.
pub fn pretrained_run(
    dir: &Path,
    model: &ModelConfig,
    config_text: &str,
    weights: &Path,
    classes: &[String],
) -> Result<usize> {
    let run = RunDir::new(dir);
    run.create()?;
    let shape = ImageShape { channels: 3, height: 224, width: 224 };
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = build(&vs.root(), model, Shape::Map(3, 224, 224), classes.len() as i64)?;
    let loaded = cnnlab_models::load_pretrained(&mut vs, &net, weights)?;
    if !loaded.skipped_head.is_empty() {
        return Err(Error::invalid(
            "model.head",
            format!("{}: its classifier does not fit ({})", weights.display(), loaded.skipped_head.join(", ")),
        ));
    }
    run.write_bytes(files::CONFIG, config_text.as_bytes())?;
    run.write_json(files::SHAPE, &shape)?;
    run.write_json(files::CLASSES, &classes)?;
    Normalizer::imagenet(shape, Device::Cpu)?.save(&run.file(files::NORMALIZER))?;
    for name in [files::BEST, files::LAST] {
        run.save_vars(name, &vs)?;
    }
    Ok(loaded.loaded)
}
