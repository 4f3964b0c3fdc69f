#!/usr/bin/env python3
"""Inference images/s of an exported model.onnx in onnxruntime: batches of 64 random float32
pixels at the model's input size, on the threads given (intra-op; inter-op 1). The
counterpart of `cargo run --release -p cnnlab-train --example predict_rate -- RUN`.

    .venv/bin/python crates/train/benches/onnx_rate.py RUN/model.onnx [THREADS] [SECONDS]
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort

path = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
_, c, h, w = session.get_inputs()[0].shape
batch = 64
x = np.random.default_rng(0).random((batch, c, h, w), dtype=np.float32)
session.run(["probabilities"], {"pixels": x})
start, images = time.perf_counter(), 0
while time.perf_counter() - start < seconds:
    session.run(["probabilities"], {"pixels": x})
    images += batch
print(json.dumps({"images_per_sec": round(images / (time.perf_counter() - start), 1), "batch": batch,
                  "threads": threads, "onnxruntime": ort.__version__}))
