"""Tiled-inference benchmark worker: one forward of a resnet34 DynamicUnet over a large image, untiled or with `predict_tiled`.

Run by tiling.py in a fresh process (project venv), so `ru_maxrss` is this mode's own peak; prints one JSON line. The model
(random init, seeded, BatchNorm statistics from noise) and the image (seeded noise) are the same in every process, so outputs can be compared across them.
"""
import time
T_START = time.perf_counter()
import argparse, json, os, platform, statistics

import torch
from torch import nn
from torchvision import models

from restorelab.models.core import create_body
from restorelab.models.unet import DynamicUnet
from restorelab.tiling import predict_tiled, tile_slices

import _common as C

IMPORT_S = time.perf_counter() - T_START


def current_rss_mb():
    "Resident memory now, in MiB (Linux /proc)."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def calibrate_bn(model, n=4, size=64):
    """Give the BatchNorm layers running statistics from a few noise batches (as training would), then eval mode: without this a
    random-init U-Net's activations grow layer after layer (eval BN with mean 0 / var 1 is the identity) and outputs reach ~1e2."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm): m.momentum = None   # a plain average over the batches
    model.train()
    with torch.no_grad():
        for _ in range(n): model(torch.randn(2, 3, size, size))   # small: its peak must stay below any mode's
    return model.eval()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--mode', choices=('untiled', 'tiled'), required=True)
    p.add_argument('--height', type=int, default=1280)
    p.add_argument('--width', type=int, default=1600)
    p.add_argument('--tile', type=int, default=1024)
    p.add_argument('--overlap', type=int, default=64)
    p.add_argument('--pad-to', type=int, default=32, help='tiles a multiple of this (the U-Net downsamples 32x)')
    p.add_argument('--batch-size', type=int, default=1, help='tiles per forward')
    p.add_argument('--repeats', type=int, default=1, help='timed forwards (the median is reported)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--save', help='torch.save the output here (for the orchestrator to compare modes)')
    args = p.parse_args()
    C.set_threads(args.threads)
    name = 'untiled' if args.mode == 'untiled' else f'tiled-{args.tile}/{args.overlap}'

    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    model = DynamicUnet(create_body(models.resnet34, pretrained=False), n_classes=3, img_size=(256, 256))
    calibrate_bn(model)
    img = torch.randn(3, args.height, args.width)              # host memory, as an image decoded for inference would be
    with torch.no_grad(): model(torch.zeros(1, 3, 64, 64))     # load the kernels and threads before the baseline
    build_s = time.perf_counter() - t0
    baseline_mb = C.peak_rss_mb()                              # model, image, torch runtime: common to both modes
    rss_mb = current_rss_mb()                                  # (should be close to baseline_mb: setup left no large transient peak)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        if args.mode == 'untiled':
            with torch.no_grad(): out = model(img[None])[0]
        else:
            out = predict_tiled(model, img, tile=args.tile, overlap=args.overlap, pad_to=args.pad_to, batch_size=args.batch_size)
        times.append(time.perf_counter() - t0)
    peak_mb = C.peak_rss_mb()
    if args.save: torch.save(out, args.save)

    ys = tile_slices(args.height, args.tile, args.overlap, args.pad_to) if args.mode == 'tiled' else [slice(0, args.height)]
    xs = tile_slices(args.width, args.tile, args.overlap, args.pad_to) if args.mode == 'tiled' else [slice(0, args.width)]
    th, tw = ys[0].stop - ys[0].start, xs[0].stop - xs[0].start
    res = dict(name=name, mode=args.mode, time_s=round(statistics.median(times), 3), times_s=[round(t, 3) for t in times],
               peak_rss_mb=round(peak_mb, 1), baseline_mb=round(baseline_mb, 1), rss_before_mb=round(rss_mb, 1), extra_mb=round(peak_mb - baseline_mb, 1),
               n_tiles=len(ys) * len(xs), tile_hw=[th, tw], pixels_ratio=round(len(ys) * th * len(xs) * tw / (args.height * args.width), 4),
               size=[args.height, args.width], tile=args.tile, overlap=args.overlap, pad_to=args.pad_to, batch_size=args.batch_size,
               out_shape=list(out.shape), finite=bool(torch.isfinite(out).all()), params=C.n_params(model),
               build_s=round(build_s, 3), import_s=round(IMPORT_S, 3), threads=torch.get_num_threads(),
               cpu_capability=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__, python=platform.python_version())
    print(json.dumps(res), flush=True)


if __name__ == '__main__': main()
