#!/usr/bin/env python3
"""Runs an ONNX model exported by cnnlab in onnxruntime, for crates/models/tests/tests.rs.

    python onnx_run.py MODEL.onnx INPUT.f32 N C H W OUT_PREFIX

checks the model with onnx.checker (full check, shapes inferred), feeds the raw float32
input as `pixels`, and writes OUT_PREFIX.logits.f32 and OUT_PREFIX.probabilities.f32
(raw float32), and OUT_PREFIX.meta.json (metadata_props, opset, input and output names).
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

model_path, input_path = sys.argv[1], sys.argv[2]
n, c, h, w = (int(v) for v in sys.argv[3:7])
out = sys.argv[7]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
options = ort.SessionOptions()
options.intra_op_num_threads = 2
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
x = np.fromfile(input_path, dtype=np.float32).reshape(n, c, h, w)
logits, probabilities = session.run(["logits", "probabilities"], {"pixels": x})
logits.astype(np.float32).tofile(out + ".logits.f32")
probabilities.astype(np.float32).tofile(out + ".probabilities.f32")
meta = {
    "metadata": {p.key: p.value for p in model.metadata_props},
    "opset": [o.version for o in model.opset_import],
    "inputs": [i.name for i in session.get_inputs()],
    "input_shape": [d if isinstance(d, int) else str(d) for d in session.get_inputs()[0].shape],
    "outputs": [o.name for o in session.get_outputs()],
}
json.dump(meta, open(out + ".meta.json", "w"))
