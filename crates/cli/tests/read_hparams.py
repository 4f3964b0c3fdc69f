"""Asks a real TensorBoard server what its HParams tab shows for a study folder.

Usage: read_hparams.py STUDY_DIR SESSIONS

Starts `tensorboard --logdir STUDY_DIR` (tensorboard from PyPI in .venv, its Python
reader: --load_fast=false) on a free port of 127.0.0.1, POSTs the HParams plugin's
`/experiment` and `/session_groups` requests (what the tab's page sends) until
SESSIONS sessions are listed with their metrics (60 s at most), and prints
{"experiment": ..., "session_groups": ...} as the server answered, then stops it.
"""

import json
import socket
import subprocess
import sys
import time
import urllib.request


def post(port, route, body):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/data/plugin/hparams/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def main(logdir, sessions):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1",
         "--port", str(port), "--load_fast=false", "--reload_interval", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 60
        last = None
        while time.time() < deadline:
            time.sleep(0.5)
            if server.poll() is not None:
                sys.exit(f"tensorboard exited: {server.stderr.read().decode()[-2000:]}")
            try:
                experiment = post(port, "experiment", {"experimentName": "", "includeMetrics": True})
                groups = post(port, "session_groups", {
                    "experimentName": "",
                    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
                    "colParams": [{"hparam": h["name"]} for h in experiment.get("hparamInfos", [])]
                    + [{"metric": m["name"]} for m in experiment.get("metricInfos", [])],
                    "startIndex": 0,
                    "sliceSize": 1000,
                    "includeMetrics": True,
                })
            except OSError as e:  # not listening yet
                last = e
                continue
            last = groups
            listed = groups.get("sessionGroups", [])
            # Sessions first, then their scalars as the reader gets to each run.
            if len(listed) >= sessions and all(g.get("metricValues") for g in listed):
                print(json.dumps({"experiment": experiment, "session_groups": groups}))
                return
        sys.exit(f"tensorboard did not list {sessions} sessions in 60 s; last answer: {last}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
