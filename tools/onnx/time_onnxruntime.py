"""Times ONNX Runtime on an ONNX file, one image input, for comparison with `roadwatch bench model`.

  python3 tools/onnx/time_onnxruntime.py FILE.onnx --size 512x256 --threads 1 --runs 10

Prints the median milliseconds per run after two warm-up runs (needs onnxruntime and numpy)."""
import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort

parser = argparse.ArgumentParser()
parser.add_argument("model")
parser.add_argument("--size", default="512x256")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--runs", type=int, default=10)
args = parser.parse_args()
width, height = map(int, args.size.split("x"))
options = ort.SessionOptions()
options.intra_op_num_threads = args.threads
options.inter_op_num_threads = 1
session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
image = np.random.default_rng(0).standard_normal((1, 3, height, width), dtype=np.float32)
for _ in range(2):
    session.run(None, {name: image})
times = []
for _ in range(args.runs):
    start = time.perf_counter()
    session.run(None, {name: image})
    times.append((time.perf_counter() - start) * 1000)
print(f"onnxruntime {ort.__version__} {args.model} {width}x{height} threads {args.threads}: "
      f"{statistics.median(times):.1f} ms median of {args.runs}")
