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

# segformer-tiny.onnx: a small network in SegFormer's shape, random weights (seed 0): two stages of overlap
# patch embedding (strided conv + LayerNorm), efficient self-attention with spatial reduction, Mix-FFN with
# a depthwise 3x3 conv and GELU; an all-MLP decoder (per-stage linear, bilinear upsampling, concatenation,
# fusion, classifier). Exported at opset 17 for a 1x3x128x256 input; segformer-tiny.input.bin and
# segformer-tiny.logits.bin hold a fixed input and PyTorch's logits (float32, little-endian, row-major).
import numpy as np  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Attention(nn.Module):
    def __init__(self, dim, heads, reduction):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.reduction = reduction
        if reduction > 1:
            self.sr = nn.Conv2d(dim, dim, reduction, reduction)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, h, w):
        b, n, c = x.shape
        q = self.q(x).reshape(b, n, self.heads, c // self.heads).permute(0, 2, 1, 3)
        if self.reduction > 1:
            y = x.permute(0, 2, 1).reshape(b, c, h, w)
            y = self.norm(self.sr(y).reshape(b, c, -1).permute(0, 2, 1))
        else:
            y = x
        kv = self.kv(y).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        k, v = kv[0], kv[1]
        attention = (q @ k.transpose(-2, -1)) * self.scale
        x = (attention.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class MixFFN(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dw = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)

    def forward(self, x, h, w):
        x = self.fc1(x)
        b, n, c = x.shape
        x = self.dw(x.transpose(1, 2).reshape(b, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    def __init__(self, dim, heads, reduction):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention, self.ffn = Attention(dim, heads, reduction), MixFFN(dim, dim * 4)

    def forward(self, x, h, w):
        x = x + self.attention(self.norm1(x), h, w)
        return x + self.ffn(self.norm2(x), h, w)


class Stage(nn.Module):
    def __init__(self, cin, dim, patch, stride, heads, reduction):
        super().__init__()
        self.embed = nn.Conv2d(cin, dim, patch, stride, patch // 2)
        self.embed_norm, self.norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.blocks = nn.ModuleList([Block(dim, heads, reduction) for _ in range(2)])

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        x = self.embed_norm(x.flatten(2).transpose(1, 2))
        for block in self.blocks:
            x = block(x, h, w)
        return self.norm(x).reshape(b, h, w, c).permute(0, 3, 1, 2)


class TinySegFormer(nn.Module):
    def __init__(self, classes=19):
        super().__init__()
        self.stage1 = Stage(3, 32, 7, 4, 1, 4)
        self.stage2 = Stage(32, 64, 3, 2, 2, 2)
        self.linear1, self.linear2 = nn.Linear(32, 64), nn.Linear(64, 64)
        self.fuse = nn.Sequential(nn.Conv2d(128, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.classifier = nn.Conv2d(64, classes, 1)

    def forward(self, x):
        f1 = self.stage1(x)
        f2 = self.stage2(f1)
        d1 = self.linear1(f1.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(1, 64, f1.shape[2], f1.shape[3])
        d2 = self.linear2(f2.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(1, 64, f2.shape[2], f2.shape[3])
        d2 = F.interpolate(d2, size=f1.shape[2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat([d2, d1], dim=1)))


torch.manual_seed(0)
tiny = TinySegFormer().eval()
with torch.no_grad():
    for module in tiny.modules():  # running statistics that are not the identity
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    image = torch.randn(1, 3, 128, 256)
    logits = tiny(image)
torch.onnx.export(tiny, image, os.path.join(out, "segformer-tiny.onnx"), input_names=["image"],
                  output_names=["logits"], opset_version=17, dynamo=False)
image.numpy().astype("<f4").tofile(os.path.join(out, "segformer-tiny.input.bin"))
logits.numpy().astype("<f4").tofile(os.path.join(out, "segformer-tiny.logits.bin"))
print("wrote", os.path.join(out, "segformer-tiny.onnx"), tuple(logits.shape),
      sum(p.numel() for p in tiny.parameters()), "parameters")
