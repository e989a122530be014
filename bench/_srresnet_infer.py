"""SrResnet ×4 inference worker: one photo through `SrResnet(64, 4)` in eval mode, float32, untiled or with `predict_tiled`.

Run by srresnet_step.py in a fresh process (project venv), so `ru_maxrss` is this variant's own peak; prints one JSON line.
The model (random init, seeded: its one BatchNorm keeps its default running statistics, so in eval mode it is a fixed affine
map) and the photo (`srresnet_step.synth_photo`, seeded, ImageNet-normalised as the training inputs) are the same in every
process, so the outputs can be compared across them.
"""
import time
T_START = time.perf_counter()
import argparse, json, platform, statistics

import torch

from restorelab.data.bunch import imagenet_stats, normalize
from restorelab.models.srresnet import SrResnet
from restorelab.tiling import predict_tiled, tile_slices

import _common as C
import _unet_common as U
from _tiling import current_rss_mb
from srresnet_step import synth_photo

IMPORT_S = time.perf_counter() - T_START


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--mode', choices=('untiled', 'tiled'), required=True)
    p.add_argument('--width', type=int, default=1280, help='photo width in pixels (the output is 4× it)')
    p.add_argument('--height', type=int, default=960, help='photo height in pixels')
    p.add_argument('--tile', type=int, default=256, help='tile side in photo pixels')
    p.add_argument('--overlap', type=int, default=48, help='overlap of neighbouring tiles in photo pixels')
    p.add_argument('--margin', type=int, default=None, help="pixels next to a tile's inner edges that get no weight "
                                                              "(default: predict_tiled's, overlap // 4)")
    p.add_argument('--repeats', type=int, default=1, help='timed calls (the median is reported)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--save', help='torch.save the output here (for the orchestrator to compare variants)')
    args = p.parse_args()
    C.set_threads(args.threads)
    tiled = args.mode == 'tiled'
    margin = (args.overlap // 4 if args.margin is None else args.margin) if tiled else None
    name = f'tiled-{args.tile}/{args.overlap}/{margin}' if tiled else 'untiled'

    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    model = SrResnet(U.SRR_NF, U.SRR_SCALE).eval()
    photo = torch.from_numpy(synth_photo(args.height, args.width, seed=args.seed)).permute(2, 0, 1)
    img = normalize(photo.float().div_(255), *imagenet_stats).contiguous()   # (3, H, W) in host memory, as a decoded photo
    del photo
    with torch.no_grad(): model(torch.zeros(1, 3, 32, 32))    # load the kernels and threads before the baseline
    build_s = time.perf_counter() - t0
    baseline_mb, rss_mb = C.peak_rss_mb(), current_rss_mb()    # model, photo, torch runtime: common to every variant

    times = []
    for _ in range(args.repeats):
        out = None                                             # let the previous repeat's output go first
        t0 = time.perf_counter()
        if tiled: out = predict_tiled(model, img, tile=args.tile, overlap=args.overlap, margin=margin)
        else:
            with torch.no_grad(): out = model(img[None])[0]
        times.append(time.perf_counter() - t0)
    peak_mb = C.peak_rss_mb()
    if args.save: torch.save(out.contiguous(), args.save)

    ys = tile_slices(args.height, args.tile, args.overlap) if tiled else [slice(0, args.height)]
    xs = tile_slices(args.width, args.tile, args.overlap) if tiled else [slice(0, args.width)]
    th, tw = ys[0].stop - ys[0].start, xs[0].stop - xs[0].start
    time_s = statistics.median(times)
    res = dict(name=name, mode=args.mode, time_s=round(time_s, 3), times_s=[round(t, 3) for t in times],
               out_mp_s=round(out.shape[-2] * out.shape[-1] / 1e6 / time_s, 3),
               peak_rss_mb=round(peak_mb, 1), baseline_mb=round(baseline_mb, 1), rss_before_mb=round(rss_mb, 1),
               extra_mb=round(peak_mb - baseline_mb, 1), n_tiles=len(ys) * len(xs), tile_hw=[th, tw],
               pixels_ratio=round(len(ys) * th * len(xs) * tw / (args.height * args.width), 4),
               size=[args.height, args.width], tile=args.tile if tiled else None, overlap=args.overlap if tiled else None,
               margin=margin, out_shape=list(out.shape), finite=bool(torch.isfinite(out).all()),
               out_std=round(float(out.std()), 4), params=C.n_params(model), build_s=round(build_s, 3),
               import_s=round(IMPORT_S, 3), threads=torch.get_num_threads(),
               cpu_capability=torch.backends.cpu.get_cpu_capability(), torch=torch.__version__, python=platform.python_version())
    print(json.dumps(res), flush=True)


if __name__ == '__main__': main()
