"""Writes the small PyTorch checkpoints the weight-reader tests read (run once with torch installed;
the outputs are committed, torch is not a dependency of roadwatch).

Both files hold the same state dict, one in each torch.save format:
  a   float32 2x3   = arange(6) / 4
  b   float32 3x2   = a.t() (saved as a strided view of a's storage layout)
  c   float64 4     = [-1.5, 0, 2.25, 1e-3]
  d   float16 2x2   = [[0.5, -2], [3, 65504]]
  e   float32 2     = a[1] (a view with a storage offset)
  bn.num_batches_tracked  int64 scalar = 7
"""
import collections
import torch

a = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4
state = collections.OrderedDict()
state['a'] = a
state['b'] = a.t()
state['c'] = torch.tensor([-1.5, 0, 2.25, 1e-3], dtype=torch.float64)
state['d'] = torch.tensor([[0.5, -2], [3, 65504]], dtype=torch.float16)
state['e'] = a[1]
state['bn.num_batches_tracked'] = torch.tensor(7)
state._metadata = collections.OrderedDict([('', {'version': 1})])
torch.save(state, 'tiny_zip.pth')
torch.save(state, 'tiny_legacy.pth', _use_new_zipfile_serialization=False)
