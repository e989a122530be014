"""Shared pieces of the MNIST epoch benchmark: the model in plain torch, PNG decoding, the result line.

Imported by `_bare.py` (project venv) and `_fastai.py` (bench/.venv-fastai), so it needs only torch, torchvision and the standard library.
"""
import json, os, platform, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import nn

BENCH = Path(__file__).resolve().parent
DATA = BENCH/'.data'                      # extracted archive + decoded tensor cache (self-ignoring, see ensure_data_dir)
CACHE = DATA/'mnist_uint8.pt'
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081    # the usual MNIST stats; the bare loop normalises each batch with them
BS, MAX_LR, PCT_START, DIV, FINAL_DIV = 128, 0.05, 0.3, 25., 25e4   # fastai v1 fit_one_cycle defaults (final lr = max/(div*1e4))
MOMS, BETA2, WD = (0.95, 0.85), 0.99, 1e-2                           # v1: beta1 cycles 0.95 -> 0.85 -> 0.95, Adam beta2 0.99, true wd


def ensure_data_dir():
    "Create bench/.data with a `*` .gitignore inside, so the cache stays out of git without touching the root .gitignore."
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA/'.gitignore').write_text('*\n')
    return DATA


# ---- model: the lesson's ResNet-ish in plain torch, equal to fastai v2 ConvLayer / a 2-conv res block with BatchZero ----
def conv_layer(ni, nf, stride=1, zero_bn=False):
    "Conv(3x3, no bias) -> BatchNorm -> ReLU, as fastai v2 `ConvLayer` (bn_1st)."
    conv = nn.Conv2d(ni, nf, 3, stride=stride, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, nonlinearity='relu')
    bn = nn.BatchNorm2d(nf)
    if zero_bn:   # fastai's BatchZero: the block starts as (almost) the identity
        nn.init.zeros_(bn.weight)
        nn.init.constant_(bn.bias, 1e-3)
    return nn.Sequential(conv, bn, nn.ReLU())


class ResBlock(nn.Module):
    "x + conv2(conv1(x)), the second BatchNorm zero-initialised."
    def __init__(self, nf):
        super().__init__()
        self.conv1, self.conv2 = conv_layer(nf, nf), conv_layer(nf, nf, zero_bn=True)
    def forward(self, x): return x + self.conv2(self.conv1(x))


def resnetish():
    "The lesson's model: 4 x (stride-2 conv_layer + res block) 1->8->16->32->16, then a stride-2 conv_layer to 10, Flatten."
    def conv_and_res(ni, nf): return nn.Sequential(conv_layer(ni, nf, stride=2), ResBlock(nf))
    return nn.Sequential(conv_and_res(1, 8), conv_and_res(8, 16), conv_and_res(16, 32), conv_and_res(32, 16),
                         conv_layer(16, 10, stride=2), nn.Flatten())


def n_params(model): return sum(p.numel() for p in model.parameters())


# ---- data ----
def png_files(path):
    "Sorted (file, label, is_valid) for mnist_png/{training,testing}/<digit>/*.png."
    path = Path(path)
    out = []
    for split, is_valid in (('training', False), ('testing', True)):
        split_dir = path/split
        if not split_dir.is_dir(): raise FileNotFoundError(f"MNIST folder {split_dir} is missing (path={path})")
        for label_dir in sorted(split_dir.iterdir()):
            out += [(f, int(label_dir.name), is_valid) for f in sorted(label_dir.glob('*.png'))]
    return out


def decode_all(path, n_threads=2):
    "Decode every MNIST PNG into uint8 tensors: {'train_x': (60000,28,28), 'train_y', 'valid_x': (10000,28,28), 'valid_y'}."
    from torchvision.io import decode_png, read_file
    items = png_files(path)
    def decode_chunk(chunk):   # read_file and decode_png release the GIL, so threads overlap; one task per chunk keeps overhead low
        return torch.stack([decode_png(read_file(str(o[0])))[0] for o in chunk])
    chunks = [items[i:i+2048] for i in range(0, len(items), 2048)]
    with ThreadPoolExecutor(n_threads) as ex: xs = torch.cat(list(ex.map(decode_chunk, chunks)))
    ys = torch.tensor([o[1] for o in items])
    is_valid = torch.tensor([o[2] for o in items])
    return {'train_x': xs[~is_valid].contiguous(), 'train_y': ys[~is_valid].contiguous(),
            'valid_x': xs[is_valid].contiguous(), 'valid_y': ys[is_valid].contiguous()}


# ---- measurement ----
def peak_rss_mb():
    "Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def set_threads(n):
    "Use n torch threads (0 = leave torch's default)."
    if n: torch.set_num_threads(n)


def report(name, *, epoch_s, n_train, setup_s, valid_s, valid_acc, model, import_s, **extra):
    "Print the one JSON result line the orchestrator reads (the last line of stdout that starts with '{')."
    res = dict(name=name, epoch_s=round(epoch_s, 3), img_s=round(n_train/epoch_s, 1), setup_s=round(setup_s, 3),
               valid_s=round(valid_s, 3), valid_acc=round(float(valid_acc), 4), peak_rss_mb=round(peak_rss_mb(), 1),
               import_s=round(import_s, 3), n_train=n_train, params=n_params(model), threads=torch.get_num_threads(),
               torch=torch.__version__, python=platform.python_version(), **extra)
    print(json.dumps(res), flush=True)
    return res
