#!/usr/bin/env python3
"""Benchmark of datasets larger than memory (not a test: minutes, numbers for the notes).

Generates an image folder of 64x64 JPEGs in 10 classes (200,000 images, and 20,000 and
100,000 as hard-linked subsets), then for each size trains one epoch of seed 003's final
network (cnnlab's `configs/cifar10/seed3-final.toml` layers, Adam 1e-3, batch 64):

- cnnlab with `data.cache = true`: the first run decodes into the cache file, a second
  run maps it (the cache as the dataset);
- cnnlab with the cache off: every image decoded into memory;
- PyTorch's ImageFolder + DataLoader(num_workers=2) on the same folder, the same network;
- at the largest size, cnnlab mapped inside a memory cgroup of 1 GiB (about what the
  process itself holds at its peak: libtorch, the batches, evaluation's) plus a quarter
  of the cache, so three quarters of the cache do not fit in the page cache.

Each row: wall seconds, the epoch's training images/s, peak resident memory of the whole
process tree (VmRSS summed over the processes, sampled every 0.1 s) and its anonymous
part (RssAnon: what the process allocated, not file pages the kernel can drop).
Runs one after the other, never two at once.

    cargo build --release -p cnnlab-cli
    .venv/bin/python crates/data/benches/larger_than_memory.py [WORK_DIR] [--sizes 20000,100000,200000]
"""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CNNLAB = REPO / "target/release/cnnlab"
CLASSES = 10

LAYERS = """layers = [
  { type = "conv", out = 16, kernel = 3, padding = 1 }, { type = "batchnorm" }, { type = "relu" }, { type = "maxpool", kernel = 2 },
  { type = "conv", out = 32, kernel = 3, padding = 1 }, { type = "batchnorm" }, { type = "relu" }, { type = "maxpool", kernel = 2 },
  { type = "conv", out = 64, kernel = 3, padding = 1 }, { type = "batchnorm" }, { type = "relu" }, { type = "maxpool", kernel = 2 },
  { type = "flatten" }, { type = "linear", out = 256 }, { type = "relu" }, { type = "linear" },
]"""


def generate(root, n):
    """`n` 64x64 JPEGs (quality 90) in CLASSES folders: a class colour, a gradient and noise."""
    import numpy as np
    from PIL import Image

    if (root / "done").exists():
        return
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
    for k in range(n):
        c = k % CLASSES
        base = np.stack([(xx * (c + 1) * 3) % 256, (yy * (9 - c) * 3) % 256, (xx + yy + c * 25) % 256], -1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"class{c}" / f"{k:07d}.jpg", quality=90)
    (root / "done").write_text(str(n))


def subset(full, root, n):
    if (root / "done").exists():
        return
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        names = sorted(os.listdir(full / f"class{c}"))[: n // CLASSES]
        for name in names:
            dst = root / f"class{c}" / name
            if not dst.exists():
                os.link(full / f"class{c}" / name, dst)
    (root / "done").write_text(str(n))


def tree_rss(pid):
    """(VmRSS, RssAnon) in bytes summed over `pid` and its descendants."""
    total = anon = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            for task in os.listdir(f"/proc/{p}/task"):
                stack += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
            elif line.startswith("RssAnon:"):
                anon += int(line.split()[1]) * 1024
    return total, anon


def measured(cmd, cwd=REPO, cgroup=None, env=None):
    """Runs `cmd`, sampling the tree's memory; (wall seconds, peak VmRSS, peak RssAnon, stdout)."""
    if cgroup:
        cmd = ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$@"', "sh", *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    peak = [0, 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            total, anon = tree_rss(proc.pid)
            peak[0], peak[1] = max(peak[0], total), max(peak[1], anon)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err[-3000:]}")
    return time.perf_counter() - start, peak[0], peak[1], out


def cnnlab_row(work, root, n, cache, label, cgroup=None):
    config = work / f"cfg-{n}-{cache}.toml"
    config.write_text(
        f'[data]\ndataset = "image-folder"\npath = "{root}"\nimage_size = 64\ntest_fraction = 0.01\n'
        f"cache = {str(cache).lower()}\n\n[model]\n{LAYERS}\n\n"
        '[train]\nepochs = 1\nbatch_size = 64\noptimizer = "adam"\nlr = 1e-3\nseed = 0\ndevice = "cpu"\n'
    )
    run = work / "runs" / f"{label}-{n}"
    subprocess.run(["rm", "-rf", str(run)], check=True)
    wall, rss, anon, _ = measured(
        [str(CNNLAB), "-q", "train", str(config), "--out", str(run)], cgroup=cgroup, env={"CNNLAB_DATA": str(work / "data")}
    )
    history = (run / "history.csv").read_text().splitlines()
    header, last = history[0].split(","), history[-1].split(",")
    rate = float(last[header.index("images_per_sec")])
    return {"what": label, "images": n, "wall_s": round(wall, 1), "images_per_s": round(rate), "peak_rss_mb": rss >> 20,
            "peak_anon_mb": anon >> 20}


TORCH = r"""
import json, sys, time, torch
from torch import nn
from torchvision import datasets, transforms
torch.manual_seed(0)
ds = datasets.ImageFolder(sys.argv[1], transforms.Compose([transforms.ToTensor(),
                                                           transforms.Normalize([0.5] * 3, [0.25] * 3)]))
loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2)
def block(i, o):
    return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
net = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.Flatten(),
                    nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, len(ds.classes)))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
start = time.perf_counter()
for x, y in loader:
    opt.zero_grad()
    loss_fn(net(x), y).backward()
    opt.step()
print(json.dumps({"images_per_s": len(ds) / (time.perf_counter() - start)}))
"""


def torch_row(root, n):
    wall, rss, anon, out = measured([sys.executable, "-c", TORCH, str(root)])
    rate = json.loads(out.strip().splitlines()[-1])["images_per_s"]
    return {"what": "PyTorch ImageFolder + DataLoader(2 workers)", "images": n, "wall_s": round(wall, 1),
            "images_per_s": round(rate), "peak_rss_mb": rss >> 20, "peak_anon_mb": anon >> 20}


def memory_cgroup(limit):
    v1 = Path("/sys/fs/cgroup/memory")
    path = (v1 if v1.exists() else Path("/sys/fs/cgroup")) / f"cnnlab-bench-{os.getpid()}"
    path.mkdir(exist_ok=True)
    (path / ("memory.limit_in_bytes" if v1.exists() else "memory.max")).write_text(str(limit))
    return path


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    work = Path(args[0] if args else "/tmp/cnnlab-large-bench")
    sizes = [20000, 100000, 200000]
    for a in sys.argv[1:]:
        if a.startswith("--sizes="):
            sizes = [int(s) for s in a.split("=", 1)[1].split(",")]
    work.mkdir(parents=True, exist_ok=True)
    full = work / f"images-{max(sizes)}"
    generate(full, max(sizes))
    rows = []
    for n in sizes:
        root = full if n == max(sizes) else work / f"images-{n}"
        subset(full, root, n)
        for label, cache in [("cnnlab, cache built (decode + write + map)", True),
                             ("cnnlab, cache mapped", True),
                             ("cnnlab, decoded into memory", False)]:
            if "built" in label:
                subprocess.run(["rm", "-rf", str(work / "data" / ".cnnlab-cache")], check=True)
            rows.append(cnnlab_row(work, root, n, cache, label))
            print(json.dumps(rows[-1]), flush=True)
        rows.append(torch_row(root, n))
        print(json.dumps(rows[-1]), flush=True)
    n = max(sizes)
    cache_bytes = n * 64 * 64 * 3
    limit = (1 << 30) + cache_bytes // 4
    group = memory_cgroup(limit)
    try:
        rows.append(cnnlab_row(work, full, n, True, f"cnnlab, cache mapped, memory limit {limit >> 20} MB", cgroup=group))
        print(json.dumps(rows[-1]), flush=True)
    finally:
        time.sleep(1)
        os.rmdir(group)
    print("\n| what | images | wall s | train images/s | peak RSS MB | of it anonymous MB |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['images']} | {r['wall_s']} | {r['images_per_s']} | {r['peak_rss_mb']} | {r['peak_anon_mb']} |")


if __name__ == "__main__":
    main()
