//! `cnnlab export`: a finished run as an ONNX model that onnxruntime runs with the
//! probabilities `cnnlab evaluate` gives, and one-line errors for what cannot export.

use std::process::Command;

use crate::util::{assert_ok, assert_one_line_error, cnnlab, fashion_run, read_json, workspace};

/// The exported Fashion-MNIST run, in onnxruntime (the `.venv`'s, as a user would
/// deploy it) and as TorchScript in `torch.jit.load`, on PNGs it never saw, gives
/// the probabilities `cnnlab evaluate --tta none` writes for the same files to 1e-4;
/// the model's
/// metadata names the classes and input. Unfinished runs, other folders, unknown
/// formats and unwritable paths are one line each, with nothing written.
#[test]
fn exported_onnx_runs_in_onnxruntime_as_evaluate() {
    let whole = &fashion_run().run;
    let run = whole.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let classes: Vec<String> = serde_json::from_value(read_json(&whole.join("classes.json"))).unwrap();
    let labelled = tmp.path().join("labelled");
    // Three classes whose names make folder names ("T-shirt/top" does not).
    for (k, class) in classes.iter().filter(|c| !c.contains('/')).take(3).enumerate() {
        std::fs::create_dir_all(labelled.join(class)).unwrap();
        for i in 0..2u32 {
            let img = image::GrayImage::from_fn(28, 28, |x, y| {
                let ring = ((x as i32 - 14).pow(2) + (y as i32 - 14).pow(2)) as u32;
                image::Luma([((ring * (k as u32 + 2) + x * i * 7) % 256) as u8])
            });
            img.save(labelled.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    let preds = tmp.path().join("preds.csv");
    let out = cnnlab(
        &["evaluate", "--run", run, "--tta", "none", "--out", preds.to_str().unwrap(), labelled.to_str().unwrap()],
        tmp.path(),
    );
    assert_ok(&out);
    let model = tmp.path().join("fashion.onnx");
    let out = cnnlab(&["export", "--run", run, "--out", model.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("fashion.onnx"));
    let traced = tmp.path().join("fashion.pt");
    let out =
        cnnlab(&["export", "--run", run, "--format", "torchscript", "--out", traced.to_str().unwrap()], tmp.path());
    assert_ok(&out);

    // onnxruntime on the same files, decoded by PIL, scaled to [0, 1].
    let script = r#"
import json, sys
import numpy as np, onnx, onnxruntime as ort
from PIL import Image
import torch
model, traced, files = sys.argv[1], sys.argv[2], sys.argv[3:]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
x = np.stack([np.asarray(Image.open(f), dtype=np.float32)[None] / 255.0 for f in files])
probs, = session.run(["probabilities"], {"pixels": x})
meta = {p.key: p.value for p in onnx.load(model).metadata_props}
jit_probs = torch.jit.load(traced)(torch.from_numpy(x)).softmax(1)
print(json.dumps({"probs": probs.tolist(), "jit": jit_probs.tolist(), "meta": meta}))
"#;
    let mut reader = csv::Reader::from_path(&preds).unwrap();
    let header = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let file_column = header.iter().position(|h| h == "file").unwrap();
    let files: Vec<String> =
        rows.iter().map(|r| labelled.join(&r[file_column]).to_string_lossy().into_owned()).collect();
    let ran = Command::new(workspace().join(".venv/bin/python"))
        .arg("-c")
        .arg(script)
        .arg(&model)
        .arg(&traced)
        .args(&files)
        .output()
        .expect(".venv's python runs (cargo xtask setup)");
    assert!(
        ran.status.success(),
        "onnxruntime failed (cargo xtask ci installs onnx and onnxruntime): {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    for (i, row) in rows.iter().enumerate() {
        for (k, class) in classes.iter().enumerate() {
            let column = header.iter().position(|h| h == format!("p_{class}")).unwrap();
            let want: f64 = row[column].parse().unwrap();
            for runtime in ["probs", "jit"] {
                let have = got[runtime][i][k].as_f64().unwrap();
                assert!((have - want).abs() < 1e-4, "{}: p_{class} {have} in {runtime}, {want} in evaluate", &row[0]);
            }
        }
    }
    let meta = &got["meta"];
    let named: Vec<String> = serde_json::from_str(meta["classes"].as_str().unwrap()).unwrap();
    assert_eq!(named, classes);
    assert!(meta["input"].as_str().unwrap().contains("[batch, 1, 28, 28]"), "{meta}");
    assert!(meta["mean"].as_str().is_some() && meta["cnnlab_version"].as_str().is_some(), "{meta}");

    // What cannot export: one line each, nothing written.
    let unfinished = tmp.path().join("unfinished");
    std::fs::create_dir_all(&unfinished).unwrap();
    for name in ["config.toml", "shape.json", "classes.json", "normalizer.json", "last.safetensors", "history.csv"] {
        std::fs::copy(whole.join(name), unfinished.join(name)).unwrap();
    }
    let out = cnnlab(&["export", "--run", unfinished.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "the run has not finished (no metrics.json)");
    assert!(!unfinished.join("model.onnx").exists());
    let out = cnnlab(&["export", "--run", labelled.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "config.toml is missing");
    let out = cnnlab(&["export", "--run", run, "--format", "keras"], tmp.path());
    assert_eq!(out.status.code(), Some(2), "an unknown format is a usage error");
    let nowhere = tmp.path().join("no/such/folder/model.onnx");
    let out = cnnlab(&["export", "--run", run, "--out", nowhere.to_str().unwrap()], tmp.path());
    assert_one_line_error(&out, 1, "model.onnx: writing the model");
    assert!(!nowhere.exists());
}

/// `--format folder`: a Hugging Face-style model folder whose card renders as
/// Markdown (tables, the confusion matrix picture) under a YAML header, whose
/// `model.safetensors` holds the run's weights plus PyTorch's `num_batches_tracked`,
/// and which `predict` takes as a run; an existing folder is not overwritten.
#[test]
fn a_model_folder_is_a_hub_repository_and_a_run() {
    let whole = &fashion_run().run;
    let run = whole.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("fashion-model");
    let out = cnnlab(&["export", "--run", run, "--format", "folder", "--out", folder.to_str().unwrap()], tmp.path());
    assert_ok(&out);
    for name in ["model.safetensors", "model.onnx", "config.json", "README.md", "confusion_matrix.png"] {
        assert!(folder.join(name).exists(), "{name} in the folder");
    }
    let config = read_json(&folder.join("config.json"));
    assert_eq!(config["input_size"], serde_json::json!([1, 28, 28]));
    assert_eq!(config["classes"], read_json(&whole.join("classes.json")));
    assert!(config["architecture"]["layers"].is_array(), "{config}");

    // The card: a YAML header of `key: value` and `- item` lines, then Markdown.
    let card = std::fs::read_to_string(folder.join("README.md")).unwrap();
    let (header, body) = card.strip_prefix("---\n").and_then(|c| c.split_once("\n---\n")).expect("a YAML header");
    for line in header.lines() {
        let keyed = line.split_once(": ").is_some_and(|(k, _)| !k.contains(' '));
        assert!(keyed || line.starts_with("- ") || line.ends_with(':'), "YAML line {line:?}");
    }
    for key in ["license: ", "library_name: cnnlab", "datasets:", "metrics:", "tags:"] {
        assert!(header.contains(key), "{key} in {header}");
    }
    let rendered = Command::new(workspace().join(".venv/bin/python"))
        .args([
            "-c",
            "import sys, markdown; print(markdown.markdown(sys.stdin.read(), extensions=['tables', 'fenced_code']))",
        ])
        .stdin(std::fs::File::open(folder.join("README.md")).unwrap())
        .output()
        .unwrap();
    let html = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success() && html.contains("<table>") && html.contains("<img alt=\"confusion matrix"),
        "{html}"
    );
    assert!(body.contains("95% interval") && body.contains("## Limitations") && body.contains("28x28"), "{body}");

    // The weights: every variable of the run, and a num_batches_tracked per batch norm.
    let saved: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(folder.join("model.safetensors")).unwrap().into_iter().collect();
    let last: Vec<(String, tch::Tensor)> = tch::Tensor::read_safetensors(whole.join("last.safetensors")).unwrap();
    for (name, t) in &last {
        assert!(saved[name].equal(t), "{name}");
    }
    let norms = last.iter().filter(|(n, _)| n.ends_with(".running_mean")).count();
    assert!(norms > 0 && saved.keys().filter(|n| n.ends_with(".num_batches_tracked")).count() == norms);

    // A run to predict with: the same answer as the run's.
    let img = tmp.path().join("a.png");
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * 9 + y * 5) % 256) as u8])).save(&img).unwrap();
    let top = |run: &str| {
        let out = cnnlab(&["predict", "--run", run, "--tta", "none", "--top", "2", img.to_str().unwrap()], tmp.path());
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout).lines().skip(1).map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(top(folder.to_str().unwrap()), top(run));
    let again = cnnlab(&["export", "--run", run, "--format", "folder", "--out", folder.to_str().unwrap()], tmp.path());
    assert_one_line_error(&again, 1, "exists: remove it or choose another --out");
}
