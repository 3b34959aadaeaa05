"""Makes the ONNX test fixtures of Tests/ONNXTests/Fixtures from the PyTorch reference (needs torch, onnx,
safetensors and ../shared). Not needed to use roadwatch.

  python3 tools/onnx/make_fixtures.py [--shared ../shared]

espnet-512x256.onnx: the reference ESPNet with the Cityscapes weights of ../shared, exported at opset 17 with a
1x3xHxW input (traced at 512x256, the size of ../shared's reference tensors), outputs 'features' (what the native model
clusters) and 'logits'.

espnetv2-512x256.onnx: the reference ESPNetv2 at 512x256 (a fixed size: adaptive pooling to sizes that do not
divide is exported as matrix products), outputs 'features' (level 4) and 'logits'. Its weights would make the
file 3.2 MB, over the 2 MB a fixture may weigh, so the graph keeps none: every weight is external data pointing
into ../shared's espnetv2_s_2.0_city_1024x512.safetensors (offset and length of that tensor's bytes), and the
test copies that file beside the graph. For the weights to be the checkpoint's bytes the batch norms are written
as their arithmetic and the export does not fold constants (else each would be folded into its convolution);
roadwatch folds them at load.
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

# espnetv2-512x256.onnx (see the top of this file).
import espnetv2  # noqa: E402  (the reference, from ../shared)
import struct  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
import numpy as np  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

espnetv2.EXPORT_ADAPTIVE_AS_MATMUL = True
matrix_pool = espnetv2.adaptive_avg_pool


def adaptive_pool(x, size):  # whole-ratio poolings as AvgPool, which keeps the graph small
    h, w = int(x.shape[2]), int(x.shape[3])
    if h % size[0] == 0 and w % size[1] == 0:
        return F.avg_pool2d(x, (h // size[0], w // size[1]))
    return matrix_pool(x, size)


espnetv2.adaptive_avg_pool = adaptive_pool


class PlainBatchNorm(nn.Module):
    """Inference batch norm as arithmetic on the checkpoint's own tensors (same names)."""
    def __init__(self, bn):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)

    def forward(self, x):
        scale = (self.weight / torch.sqrt(self.running_var + self.eps)).reshape(1, -1, 1, 1)
        return (x - self.running_mean.reshape(1, -1, 1, 1)) * scale + self.bias.reshape(1, -1, 1, 1)


def plain_batch_norms(module):
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, PlainBatchNorm(child))
        else:
            plain_batch_norms(child)


class FeaturesAndLogits(nn.Module):
    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        _, level4, logits = self.network(x)
        return level4, logits


v2 = espnetv2.load_model()
plain_batch_norms(v2)
v2_path = os.path.join(out, "espnetv2-512x256.onnx")
torch.onnx.export(FeaturesAndLogits(v2).eval(), torch.zeros(1, 3, 256, 512), v2_path, input_names=["image"],
                  output_names=["features", "logits"], opset_version=17, dynamo=False, do_constant_folding=False)
with open(espnetv2.SAFETENSORS, "rb") as f:
    header_size = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(header_size))
    blob = f.read()
graph = onnx.load(v2_path)
for tensor in graph.graph.initializer:
    entry = header[tensor.name.removeprefix("network.")]
    start, end = entry["data_offsets"]
    assert entry["dtype"] == "F32" and np.array_equal(np.frombuffer(blob[start:end], "<f4"),
                                                      numpy_helper.to_array(tensor).ravel()), tensor.name
    tensor.ClearField("raw_data")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", os.path.basename(espnetv2.SAFETENSORS)), ("offset", str(8 + header_size + start)),
                       ("length", str(end - start))):
        tensor.external_data.add(key=key, value=value)
onnx.save(graph, v2_path)
assert os.path.getsize(v2_path) < 2 << 20
with open(os.path.join(out, "espnetv2-512x256.json"), "w") as f:
    json.dump({"input": {"order": "rgb", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                         "scaling": "divideFirst", "size_multiple": 16},
               "default_size": [512, 256], "logits": "logits", "features": "features",
               "in_distribution_classes": 19}, f, indent=2)
    f.write("\n")
print("wrote", v2_path, os.path.getsize(v2_path), "bytes, weights external")

# segformer-tiny.onnx: a small network in SegFormer's shape, random weights (seed 0): two stages of overlap
# patch embedding (strided conv + LayerNorm), efficient self-attention with spatial reduction, Mix-FFN with
# a depthwise 3x3 conv and GELU; an all-MLP decoder (per-stage linear, bilinear upsampling, concatenation,
# fusion, classifier). Exported at opset 17 for a 1x3x128x256 input; segformer-tiny.input.bin and
# segformer-tiny.logits.bin hold a fixed input and PyTorch's logits (float32, little-endian, row-major).


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
