"""Reads a run's TensorBoard event files with TensorBoard's own reader and prints JSON.

Usage: read_tensorboard.py RUN_DIR/tb

Prints {"scalars": {tag: [[step, value], ...]}, "images": {tag: [[step, width, height,
png_bytes], ...]}, "text": {tag: text}} from
tensorboard.backend.event_processing.event_accumulator, the reader behind
`tensorboard --logdir`. The cli tests compare it with the run's history.csv.
"""

import json
import sys

from tensorboard.backend.event_processing import event_accumulator


def main(logdir):
    acc = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0, event_accumulator.TENSORS: 0}
    )
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "images": {}, "text": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags["images"]:
        out["images"][tag] = [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images(tag)]
    for tag in tags["tensors"]:
        tensor = acc.Tensors(tag)[-1].tensor_proto
        out["text"][tag] = b"".join(tensor.string_val).decode()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
