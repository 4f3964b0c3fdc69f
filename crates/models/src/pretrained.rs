//! Pretrained weights into a built network: every tensor of the file checked by
//! name and shape against the network's variables before any is copied.

use std::collections::HashMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use crate::error::{Error, Result};
use crate::network::Network;

/// What [`load_pretrained`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Tensors copied into the network.
    pub loaded: usize,
    /// The file's head tensors left out because the network has a new head
    /// (`_fc.weight`, `_fc.bias`).
    pub skipped_head: Vec<String>,
}

/// Loads the `.safetensors` state_dict at `path` into the network's variables in
/// `vs`. Batch norms' `num_batches_tracked` counters are ignored (libtorch's batch
/// norm keeps none); the file's classifier is skipped when the network's head is
/// new (its shapes differ: another class count) and loaded when it is the original's
/// (`head = "imagenet"`). Any other tensor missing from the file, left over in it,
/// or of another shape is an error naming it, and then nothing is copied.
pub fn load_pretrained(vs: &mut VarStore, net: &Network, path: &Path) -> Result<Loaded> {
    let file = path.display().to_string();
    let fail = |message: String| Error::Weights { file: file.clone(), message };
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| fail(format!("cannot read it as safetensors: {e}")))?
        .into_iter()
        .filter(|(name, _)| !name.ends_with(".num_batches_tracked"))
        .collect();
    let variables = vs.variables();
    let arch = net.backbone.map_or("the network", |b| b.name());
    // A file classifier whose shapes match the network's head loads; otherwise the
    // head is new and the file's is skipped.
    let head_fits = net.head_names().iter().all(|h| {
        variables
            .iter()
            .filter(|(n, _)| n.split('.').next() == Some(h))
            .all(|(n, v)| tensors.get(n).is_some_and(|t| t.size() == v.size()))
    });
    let is_head = |name: &str| net.head_names().iter().any(|h| name.split('.').next() == Some(h.as_str()));
    let mut names: Vec<&String> = variables.keys().collect();
    names.sort();
    let mut plan = vec![];
    for name in names {
        let var = &variables[name];
        if is_head(name) && !head_fits {
            continue;
        }
        let Some(src) = tensors.get(name) else {
            return Err(fail(format!("tensor `{name}` of {arch} is missing from the file")));
        };
        if src.size() != var.size() {
            return Err(fail(format!(
                "tensor `{name}` has shape {:?} in the file, {:?} in {arch}",
                src.size(),
                var.size()
            )));
        }
        plan.push((name, src, var));
    }
    // The file's classifier: the original's (`_fc`, `fc`) or the network's head.
    let original_head = net.backbone.map(|b| b.head_name());
    let file_head = |name: &str| is_head(name) || name.split('.').next() == original_head;
    let mut extra: Vec<&String> = tensors.keys().filter(|n| !variables.contains_key(*n)).collect();
    extra.sort();
    if let Some(name) = extra.iter().find(|n| !file_head(n)) {
        return Err(fail(format!("tensor `{name}` in the file is not a variable of {arch}")));
    }
    let mut skipped_head: Vec<String> =
        tensors.keys().filter(|n| file_head(n) && (!head_fits || !variables.contains_key(*n))).cloned().collect();
    skipped_head.sort();
    tch::no_grad(|| {
        for (_, src, var) in &plan {
            let mut var = var.shallow_clone();
            var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
        }
    });
    Ok(Loaded { loaded: plan.len(), skipped_head })
}

/// The network's variables as PyTorch's `state_dict` holds them: every variable under
/// its name on the CPU, contiguous, plus a `num_batches_tracked` of 0 beside each batch
/// norm, sorted by name. For the pretrained backbones the names are the originals', so
/// `torchvision.models.resnet18(num_classes=K).load_state_dict(...)` (or the
/// EfficientNet-Lite package's model) takes it with `strict=True`.
pub fn state_dict(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> =
        vs.variables().into_iter().map(|(name, t)| (name, t.to_device(tch::Device::Cpu).contiguous())).collect();
    let tracked: Vec<(String, Tensor)> = named
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(".running_mean"))
        .map(|bn| (format!("{bn}.num_batches_tracked"), Tensor::from(0i64)))
        .collect();
    named.extend(tracked);
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}
