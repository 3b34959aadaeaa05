"""One sitting of roadwatch's forward pass against ONNX Runtime and PyTorch on this CPU: every model x size x
thread row, the three sides interleaved row by row and round by round (the machine's speed drifts within
minutes, so only figures from one sitting, taken close together, are compared).

  python3 tools/bench/side_by_side.py --roadwatch .build/release/roadwatch [--rounds 3] [--runs 10]
                                      [--shared ../shared] [--json FILE]

Needs torch, onnxruntime, safetensors, pillow and numpy (see ../shared/tools/reference/README.md), and the
reference definitions in ../shared/tools/reference. Each model is exported once per size to ONNX (opset 13,
constants folded; ESPNetv2's adaptive pooling as matrix products, the reference's own export switch) in a
temporary folder. For every row and round: `roadwatch bench model --json` (median of --runs after 2 warm-ups),
then ONNX Runtime and PyTorch on the same preprocessed frame (median of --runs after 2 warm-ups). Prints the
median of the rounds' medians per side, the fastest single pass, and roadwatch's time over ONNX Runtime's.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--roadwatch", required=True, help="the roadwatch binary")
parser.add_argument("--shared", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--runs", type=int, default=10)
parser.add_argument("--models", default="espnetv2,espnet")
parser.add_argument("--sizes", default="512x256,1024x512")
parser.add_argument("--threads", default="1,2")
parser.add_argument("--json", help="write every round's figures here")
args = parser.parse_args()

reference = os.path.join(os.path.abspath(args.shared), "tools", "reference")
sys.path.insert(0, reference)
os.chdir(reference)
import torch  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402

import espnetv2 as E  # noqa: E402  (the reference definitions, from ../shared)
import models as M  # noqa: E402

torch.set_grad_enabled(False)
REGISTRY = {"espnetv2": "espnetv2-cityscapes", "espnet": "espnet-cityscapes"}
FRAME = os.path.join(os.path.abspath(args.shared), "models", "espnetv2-cityscapes", "reference", "frame100.png")
rgb = np.asarray(Image.open(FRAME).convert("RGB"), np.float32)


def load(name):
    return E.load_model() if name == "espnetv2" else M.load_model("espnet")


def prepared(name, w, h):
    if name == "espnetv2":
        return E.preprocess(E.resize_rgb(rgb, w, h))
    return M.preprocess("espnet", M.resize_rgb(rgb, w, h))


def export(name, model, x, folder):
    path = os.path.join(folder, f"{name}_{x.shape[3]}x{x.shape[2]}.onnx")
    if name == "espnetv2":
        E.EXPORT_ADAPTIVE_AS_MATMUL = True
    try:
        torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], do_constant_folding=True,
                          dynamo=False)
    finally:
        E.EXPORT_ADAPTIVE_AS_MATMUL = False
    return path


def timed(fn, runs):
    for _ in range(2):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times)


def roadwatch(name, size, threads):
    out = subprocess.run([args.roadwatch, "bench", "model", "--models", REGISTRY[name], "--sizes", size,
                          "--threads", str(threads), "--runs", str(args.runs), "--json"],
                         check=True, capture_output=True, text=True).stdout
    row = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    return row["ms"], row["min_ms"], row["kernels"]


rows = []
folder = tempfile.mkdtemp(prefix="roadwatch-side-by-side-")
started = time.strftime("%Y-%m-%d %H:%M:%S")
for name in args.models.split(","):
    model = load(name)
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        x = prepared(name, w, h)
        path = export(name, model, x, folder)
        feed = {"input": x.numpy()}
        for threads in map(int, args.threads.split(",")):
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            rounds = []
            for r in range(args.rounds):
                ours, ours_min, kernels = roadwatch(name, size, threads)
                onnx, onnx_min = timed(lambda: session.run(None, feed), args.runs)
                torch.set_num_threads(threads)
                torch_ms, torch_min = timed(lambda: model(x), args.runs)
                rounds.append(dict(roadwatch=ours, roadwatch_min=ours_min, ort=onnx, ort_min=onnx_min,
                                   torch=torch_ms, torch_min=torch_min, kernels=kernels))
                print(f"  {name} {size} {threads}t round {r + 1}: roadwatch {ours:.1f} ms, ONNX Runtime {onnx:.1f} ms, "
                      f"PyTorch {torch_ms:.1f} ms", flush=True)
            med = {k: statistics.median(r[k] for r in rounds) for k in ("roadwatch", "ort", "torch")}
            best = {k: min(r[k + "_min"] for r in rounds) for k in ("roadwatch", "ort", "torch")}
            rows.append(dict(model=name, size=size, threads=threads, rounds=rounds, median=med, fastest=best,
                             ratio=med["roadwatch"] / med["ort"],
                             round_ratios=[r["roadwatch"] / r["ort"] for r in rounds], kernels=rounds[0]["kernels"]))
ended = time.strftime("%Y-%m-%d %H:%M:%S")

print(f"\nsitting {started} to {ended}; torch {torch.__version__}, onnxruntime {ort.__version__}, "
      f"roadwatch kernels {rows[0]['kernels']}; {args.rounds} rounds of {args.runs} runs, medians of the rounds' medians")
print("| model, size, threads | roadwatch | ONNX Runtime | roadwatch / ORT | PyTorch |")
print("|---|---|---|---|---|")
for r in rows:
    m, b = r["median"], r["fastest"]
    print(f"| {'ESPNetv2' if r['model'] == 'espnetv2' else 'ESPNet'} {r['size']}, {r['threads']} | "
          f"{m['roadwatch']:.1f} ms ({b['roadwatch']:.1f}) | {m['ort']:.1f} ms ({b['ort']:.1f}) | {r['ratio']:.2f} | "
          f"{m['torch']:.1f} ms |")
print("single rounds' ratios: " + ", ".join(f"{min(r['round_ratios']):.2f}-{max(r['round_ratios']):.2f}" for r in rows))
if args.json:
    with open(args.json, "w") as f:
        json.dump(dict(started=started, ended=ended, torch=torch.__version__, onnxruntime=ort.__version__, rows=rows), f, indent=1)
