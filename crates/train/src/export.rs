//! A trained run as an ONNX model: its network(s) and normalisation in one graph
//! (cnnlab-models' writer), for onnxruntime and every other ONNX runtime.

use cnnlab_models::onnx::{to_onnx, Combine, Exported, Member};
use cnnlab_models::{ModelKind, Shape};

use crate::error::{Error, Result};
use crate::predict::Predictor;

/// The ONNX bytes of a run loaded as `seeds` (one predictor, or a seed ensemble's
/// members), with `metadata` as the model's `metadata_props`: one network's logits and
/// softmax, a seed ensemble's averaged probabilities, or a one-vs-rest run's
/// renormalised positives, as `cnnlab predict` computes them without test-time
/// augmentation.
pub fn onnx_model(seeds: &[Predictor], metadata: &[(String, String)]) -> Result<Vec<u8>> {
    let first = seeds.first().ok_or_else(|| Error::invalid("export", "no network to export"))?;
    let combine = match (first.kind, seeds.len()) {
        (ModelKind::Standard, 1) => Combine::Single,
        (ModelKind::Standard, _) => Combine::Average,
        (ModelKind::OneVsRest, 1) => Combine::OneVsRest,
        (ModelKind::OneVsRest, _) => {
            return Err(Error::invalid("export", "a seed ensemble of one-vs-rest runs does not export to ONNX yet"))
        }
    };
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
