#!/usr/bin/env python3
"""An exported model.onnx in onnxruntime against `cnnlab evaluate`, image by image: reads
the predictions CSV that `cnnlab evaluate --out PREDICTIONS.csv` wrote (file, y_true,
y_pred, p_<class>...), runs onnxruntime on the same files (PIL-decoded, scaled to [0, 1]:
the pixels cnnlab decoded when the folder is `cnnlab data export`'s PNGs at the run's
size) and prints both accuracies, the images whose predicted class differs and the
largest probability difference as JSON. Exit 1 when any image's class differs.

    cnnlab data export CONFIG --out FOLDERS
    cnnlab evaluate --run RUN FOLDERS/test --tta none --out preds.csv
    cnnlab export --run RUN --out model.onnx
    .venv/bin/python crates/train/benches/onnx_agreement.py model.onnx preds.csv
"""
import csv
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

model, predictions = sys.argv[1], sys.argv[2]
with open(predictions, newline="") as f:
    rows = list(csv.DictReader(f))
classes = [k[2:] for k in rows[0] if k.startswith("p_")]
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
_, c, h, w = session.get_inputs()[0].shape
mode = "L" if c == 1 else "RGB"
ours, theirs, differ, largest = 0, 0, [], 0.0
for start in range(0, len(rows), 64):
    chunk = rows[start:start + 64]
    x = np.stack([np.asarray(Image.open(r["file"]).convert(mode), dtype=np.float32).reshape(h, w, c)
                  .transpose(2, 0, 1) / 255.0 for r in chunk])
    probs, = session.run(["probabilities"], {"pixels": x})
    for r, p in zip(chunk, probs):
        pred = classes[int(np.argmax(p))]
        ours += r["y_pred"] == r["y_true"]
        theirs += pred == r["y_true"]
        if pred != r["y_pred"]:
            differ.append(r["file"])
        largest = max(largest, max(abs(float(r["p_" + k]) - float(v)) for k, v in zip(classes, p)))
n = len(rows)
print(json.dumps({"images": n, "accuracy_cnnlab": ours / n, "accuracy_onnxruntime": theirs / n,
                  "correct_cnnlab": ours, "correct_onnxruntime": theirs, "classes_differ": differ,
                  "largest_probability_difference": largest}, indent=1))
sys.exit(1 if differ else 0)
