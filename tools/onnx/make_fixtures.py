"""Makes the ONNX test fixtures of Tests/ONNXTests/Fixtures from the PyTorch reference (needs torch, onnx,
safetensors and ../shared). Not needed to use roadwatch.

  python3 tools/onnx/make_fixtures.py [--shared ../shared]

espnet-512x256.onnx: the reference ESPNet with the Cityscapes weights of ../shared, exported at opset 17 with a
1x3xHxW input (traced at 512x256, the size of ../shared's reference tensors), outputs 'features' (what the native model
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
                  input_names=["image"], output_names=["features", "logits"], opset_version=17, dynamo=False,
                  dynamic_axes={"image": {2: "height", 3: "width"}})
print("wrote", os.path.join(out, "espnet-512x256.onnx"))

# The model definition roadwatch reads beside the file: ESPNet's own input normalisation (BGR, divided by 255
# after standardising), its size multiple and default size, the features to cluster.
import json  # noqa: E402

definition = {
    "input": {"order": "bgr", "mean": [72.3923111, 82.90893555, 73.15840149],
              "std": [45.3192215, 46.15289307, 44.91483307], "scaling": "divideLast", "size_multiple": 8},
    "default_size": [512, 256], "logits": "logits", "features": "features", "in_distribution_classes": 19,
}
with open(os.path.join(out, "espnet-512x256.json"), "w") as f:
    json.dump(definition, f, indent=2)
    f.write("\n")
print("wrote", os.path.join(out, "espnet-512x256.json"))
