"""Makes the ONNX test fixtures of Tests/ONNXTests/Fixtures from the PyTorch reference (needs torch, onnx,
safetensors and ../shared). Not needed to use roadwatch.

  python3 tools/onnx/make_fixtures.py [--shared ../shared]

espnet-512x256.onnx: the reference ESPNet with the Cityscapes weights of ../shared, exported at opset 17 for a
1x3x256x512 input (the size of ../shared's reference tensors), outputs 'features' (what the native model
clusters) and 'logits'.
"""
import argparse
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--shared", default=os.path.join(here, "..", "..", "..", "shared"))
args = parser.parse_args()
sys.path.insert(0, os.path.join(args.shared, "tools", "reference"))
os.chdir(os.path.join(args.shared, "tools", "reference"))
import models  # noqa: E402  (the reference, from ../shared)

out = os.path.join(here, "..", "..", "Tests", "ONNXTests", "Fixtures")
os.makedirs(out, exist_ok=True)


model = models.load_model("espnet")
torch.onnx.export(model, torch.zeros(1, 3, 256, 512), os.path.join(out, "espnet-512x256.onnx"),
                  input_names=["image"], output_names=["features", "logits"], opset_version=17, dynamo=False)
print("wrote", os.path.join(out, "espnet-512x256.onnx"))
