"""MNIST epoch benchmark, contestant 'bare': a hand-written PyTorch loop over tensors decoded once.

Run by mnist_epoch.py in a fresh process; prints one JSON line. `--decode-only` times the uncached PNG decode and writes the cache.
"""
import time
T_START = time.perf_counter()
import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import _common as C

IMPORT_S = time.perf_counter() - T_START


def pad_crop(xb, pad=3):
    "Zero-pad a uint8 batch (b,h,w) by `pad` and take one random h×w crop per image (fastai v1 `rand_pad(pad, size, mode='zeros')`)."
    b, h, w = xb.shape
    xp = F.pad(xb, (pad, pad, pad, pad))
    oy, ox = torch.randint(0, 2*pad + 1, (b,)), torch.randint(0, 2*pad + 1, (b,))
    # unfold gives a (b, 2pad+1, 2pad+1, h, w) view of every crop; picking one per image copies b*h*w bytes (4x faster than 3-way gather)
    return xp.unfold(1, h, 1).unfold(2, w, 1)[torch.arange(b), oy, ox]


def to_input(xb):
    "uint8 (b,28,28) -> normalised float (b,1,28,28)."
    return ((xb.float() / 255. - C.MNIST_MEAN) / C.MNIST_STD).unsqueeze(1)


def load_data(path, use_cache=True):
    "The decoded tensors, from bench/.data's cache when there is one (and `use_cache`), else decoded now and cached. Returns (data, seconds, cached)."
    t0 = time.perf_counter()
    if use_cache and C.CACHE.exists():
        return torch.load(C.CACHE, weights_only=True), time.perf_counter() - t0, True
    data = C.decode_all(path)
    secs = time.perf_counter() - t0
    C.ensure_data_dir()
    tmp = C.CACHE.with_suffix('.tmp')
    torch.save(data, tmp)
    tmp.replace(C.CACHE)
    return data, secs, False


def train_epoch(model, opt, sched, xs, ys, bs):
    "One shuffled epoch, drop_last as fastai's train loader; returns the number of images trained on."
    model.train()
    loss_func = nn.CrossEntropyLoss()
    perm = torch.randperm(len(xs))
    n_batches = len(xs) // bs
    for i in range(n_batches):
        idx = perm[i*bs:(i+1)*bs]
        xb, yb = to_input(pad_crop(xs[idx])), ys[idx]
        loss = loss_func(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return n_batches * bs


@torch.inference_mode()
def validate(model, xs, ys, bs):
    "Accuracy over the whole validation set, in order, no augmentation."
    model.eval()
    correct = 0
    for i in range(0, len(xs), bs):
        correct += (model(to_input(xs[i:i+bs])).argmax(1) == ys[i:i+bs]).sum().item()
    return correct / len(xs)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--path', required=True, help='the mnist_png folder')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--decode-only', action='store_true', help='time an uncached decode of all PNGs, write the cache, print the JSON line')
    args = p.parse_args()
    C.set_threads(args.threads)
    if args.decode_only:
        data, secs, _ = load_data(args.path, use_cache=False)
        import json
        print(json.dumps(dict(name='bare-decode', setup_s=round(secs, 3), n_images=len(data['train_x']) + len(data['valid_x']),
                              threads=torch.get_num_threads(), peak_rss_mb=round(C.peak_rss_mb(), 1))), flush=True)
        return
    data, setup_s, cached = load_data(args.path)
    torch.manual_seed(args.seed)
    model = C.resnetish()
    n_batches = len(data['train_x']) // C.BS
    # fused: one kernel per parameter tensor, the fastest of AdamW's implementations here (bench/mnist_floor.py times them)
    opt = torch.optim.AdamW(model.parameters(), lr=C.MAX_LR / C.DIV, betas=(C.MOMS[0], C.BETA2), weight_decay=C.WD, fused=True)
    # torch's final lr is initial_lr/final_div_factor = max_lr/(div*final_div_factor), so final_div_factor = FINAL_DIV/DIV gives max/25e4
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=C.MAX_LR, total_steps=n_batches, pct_start=C.PCT_START,
                                                anneal_strategy='cos', cycle_momentum=True, base_momentum=C.MOMS[1],
                                                max_momentum=C.MOMS[0], div_factor=C.DIV, final_div_factor=C.FINAL_DIV / C.DIV)
    t0 = time.perf_counter()
    n_train = train_epoch(model, opt, sched, data['train_x'], data['train_y'], C.BS)
    epoch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    acc = validate(model, data['valid_x'], data['valid_y'], C.BS)
    valid_s = time.perf_counter() - t0
    C.report('bare', epoch_s=epoch_s, n_train=n_train, setup_s=setup_s, valid_s=valid_s, valid_acc=acc, model=model,
             import_s=IMPORT_S, setup_cached=cached)


if __name__ == '__main__': main()
