"""Lesson 14 super-resolution benchmark: SrResnet ×4 training steps (48-px LR patches -> 192-px targets, batch size 16, pixel
MSE loss) for restorelab fp32, bf16 + channels_last and the same model in a hand-written PyTorch loop (the floor restorelab must
match: ≤ 1.05× its step time), and ×4 inference on a 1280×960 photo, untiled vs tiled.

Training contestants (each run in a fresh process, printing one JSON line):
  restorelab-fp32     bench/_srresnet_restorelab.py  ImageImageList ... .transform(([rand_crop(), dihedral()], [crop_pad()]),
                                                      size=48, resize_method=ResizeMethod.NO, tfm_y=True, scale=4) ...,
                                                      Learner(data, SrResnet(64, 4), opt_func=optim.Adam, loss_func=F.mse_loss),
                                                      fit_one_cycle(1, 2e-3, div_factor=40, pct_start=0.1)
  restorelab-bf16-cl  bench/_srresnet_restorelab.py --bf16 --channels-last   the same after learn.to_bf16() and to_channels_last()
  bare-fp32           bench/_srresnet_bare.py        the same SrResnet in a hand-written loop over uint8 tensors in memory
                                                      (random crops + dihedral per image, AdamW + OneCycleLR)
Inference variants (each a fresh process, so each peak RSS is its own; bench/_srresnet_infer.py):
  untiled             model(photo[None]) under torch.no_grad()
  tiled-T/O/M         restorelab.tiling.predict_tiled(model, photo, tile=T, overlap=O, margin=M)

The training contestants train one epoch of exactly --warmup + --steps batches of synthetic photos (--hr-size px squares written
once into a temporary folder, their LR copies made by restorelab.crappify's Downscale(4)); each reports the median of its steps
after the warm-up. The orchestration (options, rounds, summary, machine info) is unet_step.py's; the inference part's outputs are
compared with the untiled one as in tiling.py.

Run from the repository root with the project venv (one run, as the issue asks; estimated at about 10 minutes on 2 quiet cores
without the bf16 contestant, which runs emulated, tens of times slower, on a CPU without native bfloat16):
    .venv/bin/python bench/srresnet_step.py [--only restorelab-fp32,bare-fp32] [--parts training,inference]
Writes bench/results/srresnet_step.md (medians, restorelab ÷ bare against the goal, inference time / throughput / memory /
difference from untiled, every run, machine info). A benchmark: it never asserts a time.
"""
import os, sys, tempfile
from pathlib import Path

from _harness import (every_run, fmt, log, machine_info, machine_section, run_one, run_rounds, started, summarize,
                      summary_rows, table, times, write_report)
from gan_step import warn_if_emulated_bf16
from tiling import compare, parse_configs, runs_table as infer_runs_table
from unet_step import final_losses, machine_and_runs, parse_args, run_benchmark

# name: (python, script, extra args, what it is)
CONTESTANTS = {
    'restorelab-fp32': (Path(sys.executable), '_srresnet_restorelab.py', [], 'restorelab, float32'),
    'restorelab-bf16-cl': (Path(sys.executable), '_srresnet_restorelab.py', ['--bf16', '--channels-last'],
                           'restorelab, `learn.to_bf16()` + `learn.to_channels_last()`'),
    'bare-fp32': (Path(sys.executable), '_srresnet_bare.py', [], 'a hand-written PyTorch loop, float32'),
}
BASELINE = 'bare-fp32'
GOALS = {'restorelab-fp32': 1.05}   # the issue: restorelab's step time ≤ 1.05 × the hand-written loop's
SCALE, NF = 4, 64                   # SrResnet(64, 4): as _unet_common.SRR_SCALE, SRR_NF (this file needs no torch)
RF_RADIUS = 20                      # SrResnet(64, 4)'s receptive-field radius in LR pixels, rounded up (measured: 19.75)
PARTS = ('training', 'inference')


def synth_photo(h, w, seed):
    """A smooth random RGB 'photo', an (h, w, 3) uint8 array: a coarse random colour field (a cell per ~48 px) upsampled
    bicubically, a few flat ellipses and rectangles with sharp edges (what super-resolution has to restore), mild noise."""
    import numpy as np
    from PIL import Image as PILImage, ImageDraw
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, h // 48), max(2, w // 48), 3), dtype=np.uint8)
    img = PILImage.fromarray(coarse).resize((w, h), PILImage.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(max(1, h * w // 20000)):      # about one shape per 140×140 px
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(8, max(9, w // 4))), y0 + int(rng.integers(8, max(9, h // 4)))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=fill)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 3, (h, w, 3)).astype(np.float32)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def write_data(root, args):
    """The training folder: `hr/{train,val}` --hr-size px square photos and `lr/{train,val}` their ÷4 copies
    (`crappify_folder(path_hr, path_lr, Crappifier([Downscale(4)]))`, MATLAB's bicubic); warmup+steps batches of train
    images (one epoch = exactly the steps run), one batch of valid."""
    from PIL import Image as PILImage
    from restorelab.core import defaults
    from restorelab.crappify import Crappifier, Downscale, crappify_folder
    n_train = (args.warmup + args.steps) * args.bs
    path = Path(root)/'srresnet'
    path_hr, path_lr = path/'hr', path/'lr'
    for folder, n, seed0 in (('train', n_train, 0), ('val', args.bs, 1_000_000)):
        (path_hr/folder).mkdir(parents=True)
        for i in range(n): PILImage.fromarray(synth_photo(args.hr_size, args.hr_size, seed0 + i)).save(path_hr/folder/f'img{i:04d}.png')
    defaults.silent = True   # no progress bar on this process's stdout, where the report goes
    crappify_folder(path_hr, path_lr, Crappifier([Downscale(SCALE)]), max_workers=args.threads or None)
    lr = args.hr_size // SCALE
    log(f'synthetic data: {n_train} train + {args.bs} valid {args.hr_size}×{args.hr_size} photos and their {lr}×{lr} '
        f'Downscale({SCALE}) copies in {path}')
    return path, n_train


# ---- options ----
def options(p):
    "This benchmark's own options (unet_step.parse_args has the shared ones)."
    p.add_argument('--parts', default=','.join(PARTS), help='which parts to run, comma-separated (default: training,inference)')
    p.add_argument('--hr-size', type=int, default=384, help='side of the square HR training photos (default 384: 96-px LR)')
    p.add_argument('--photo', default='1280x960', help='the inference photo, WIDTHxHEIGHT in LR pixels (default 1280x960)')
    p.add_argument('--configs', default=f'256/48/{RF_RADIUS},512/48/{RF_RADIUS}',
                   help='tiled inference variants as TILE/OVERLAP[/MARGIN] in photo pixels, comma-separated (default '
                        f'256/48/{RF_RADIUS},512/48/{RF_RADIUS}: a margin of {RF_RADIUS} px covers SrResnet\'s receptive field; '
                        "without MARGIN predict_tiled's default, OVERLAP // 4); empty for none")
    p.add_argument('--no-untiled', action='store_true', help='skip the untiled inference variant (no differences then)')
    p.add_argument('--force-untiled', action='store_true', help='run the untiled variant even when it looks too big for the '
                                                                'available memory')
    p.add_argument('--repeats', type=int, default=1, help='timed inference calls per run (default 1)')


def check(p, args):
    "This benchmark's own option checks (after unet_step.py's)."
    args.parts = [x.strip() for x in args.parts.split(',') if x.strip()]
    if not args.parts or set(args.parts) - set(PARTS): p.error(f'--parts: choose from {",".join(PARTS)} (got {args.parts})')
    if args.hr_size % SCALE or args.hr_size // SCALE < args.size:
        p.error(f'--hr-size must be a multiple of {SCALE} whose ÷{SCALE} holds a --size {args.size} crop (got {args.hr_size})')
    try: args.photo_wh = tuple(int(v) for v in args.photo.lower().split('x'))
    except ValueError: args.photo_wh = ()
    if len(args.photo_wh) != 2 or min(args.photo_wh) < 1: p.error(f'--photo must be WIDTHxHEIGHT, e.g. 1280x960 (got {args.photo})')
    args.tiled = []
    for part in filter(None, (x.strip() for x in args.configs.split(','))):
        tile_overlap, _, margin = part.rpartition('/') if part.count('/') == 2 else (part, '', '')
        try: (tile, overlap), margin = parse_configs(tile_overlap)[0], (int(margin) if margin else None)
        except (ValueError, IndexError): p.error(f'--configs: {part!r} is not TILE/OVERLAP[/MARGIN]')
        m = overlap // 4 if margin is None else margin
        if not 0 <= overlap < tile or m < 0 or (m and 2 * m >= overlap):
            p.error(f'--configs {part}: need 0 <= overlap < tile and margin < overlap/2')
        args.tiled.append((tile, overlap, m))
    args.tiled = list(dict.fromkeys(args.tiled))
    if args.repeats < 1: p.error('--repeats must be at least 1')


# ---- inference ----
def _mem_available_mb():
    "MemAvailable from /proc/meminfo in MiB, or None."
    try: line = next(l for l in Path('/proc/meminfo').read_text().splitlines() if l.startswith('MemAvailable'))
    except (OSError, StopIteration): return None
    return int(line.split()[1]) / 1024


UNTILED_TENSORS = 2.5   # the untiled peak in float32 tensors of 64 × (4h × 4w): measured 2.3 at 160×120 and 320×240


def untiled_need_mb(w, h):
    """The untiled forward's peak beyond the model and the photo, estimated: the last upsampling convolution's output (4·64
    channels at 2×) and its pixel shuffle (64 channels at 4×) live together, then the BatchNorm's input and output, each a
    float32 tensor of 64 × (4h × 4w), plus the convolution's own buffers: UNTILED_TENSORS such tensors."""
    return UNTILED_TENSORS * NF * (SCALE * h) * (SCALE * w) * 4 / 2**20


def run_inference(args):
    "Run the inference variants (fresh processes, interleaved per round) and compare round 1's outputs with untiled's."
    w, h = args.photo_wh
    variants = {} if args.no_untiled else {'untiled': ['--mode', 'untiled']}
    variants.update({f'tiled-{t}/{o}/{m}': ['--mode', 'tiled', '--tile', t, '--overlap', o, '--margin', m] for t, o, m in args.tiled})
    common = ['--width', w, '--height', h, '--repeats', args.repeats, '--threads', args.threads, '--seed', 0]
    env = dict(os.environ, OMP_WAIT_POLICY=args.omp_wait_policy)
    need, avail = untiled_need_mb(w, h), _mem_available_mb()
    saved = {}
    with tempfile.TemporaryDirectory(prefix='srresnet_infer_') as tmp:
        def run(name, rnd):
            if name == 'untiled' and not args.force_untiled and avail is not None and need + 1024 > avail:
                log(f'  untiled: not run, it needs about {need / 1024:.1f} GiB beyond the model, {avail / 1024:.1f} GiB available')
                return dict(name=name, error=f'not run: needs about {need / 1024:.1f} GiB, {avail / 1024:.1f} GiB were available '
                                             '(--force-untiled runs it anyway)', wall_s=0., load_before=os.getloadavg()[0])
            save = ['--save', Path(tmp)/f'{len(saved)}.pt'] if rnd == 0 else []
            r = run_one(name, sys.executable, '_srresnet_infer.py', [*variants[name], *common, *save], env=env, timeout=args.timeout)
            if save and 'error' not in r: saved[name] = save[1]
            return r
        describe = lambda r: (f"  {r['time_s']:.1f} s, {r['out_mp_s']:.2f} output MP/s, peak RSS {r['peak_rss_mb']:.0f} MiB "
                              f"(+{r['extra_mb']:.0f} over its baseline), {r['n_tiles']} tile(s) of {r['tile_hw']}")
        results = run_rounds(args.rounds, list(variants), run, describe)
        errors = compare(saved)
    summary = summarize(results, list(variants), 'time_s', medians=('extra_mb', 'baseline_mb', 'out_mp_s'),
                        firsts=('n_tiles', 'tile_hw', 'pixels_ratio', 'out_shape', 'finite', 'margin'),
                        baseline='untiled', ratios=dict(time_ratio='time_s', mem_ratio='extra_mb'))
    return dict(results=results, summary=summary, errors=errors, names=list(variants), need_mb=need, avail_mb=avail)


# ---- the report ----
def goal_cell(goal, ratio):
    "A table cell: the goal (a step time relative to bare-fp32's, or None) and whether `ratio` met it."
    if not goal: return '–'
    return f'≤ {fmt(goal)}×' + ('' if ratio is None else (' (met)' if ratio <= goal else ' (not met)'))


def training_table(names, summary):
    "The medians of each training contestant, its step time relative to bare-fp32's (against the goal), every run's step time."
    cells = lambda name, s: [name, fmt(s['step_s'], 3), fmt(s['img_s'], 2), times(s['vs_bare']), goal_cell(GOALS.get(name), s['vs_bare']),
                             fmt(s['fetch_ms'], 1), fmt(s['peak_rss_mb'], 0), f"{s['params']:,}", fmt(s['setup_s']),
                             fmt(s['build_s']), fmt(s['import_s']), every_run(s, 3)]
    header = ['contestant', 'step s', 'img/s', 'step ÷ bare-fp32', 'goal', 'fetch ms', 'peak RSS MiB', 'params', 'setup s',
              'build s', 'import s', 'step s, every run']
    return table(header, 'l' + 'r' * (len(header) - 2) + 'l', summary_rows(names, summary, cells))


def inference_table(names, summary, errors):
    "Per inference variant: tiles, time per photo, output throughput, memory, and its difference from the untiled output."
    def cells(name, s):
        e = errors.get(name, {})
        diff = lambda k, nd: '–' if name == 'untiled' or e.get(k) is None else f'{e[k]:.{nd}e}'
        return [name, s['n_tiles'], f"{s['tile_hw'][0]}×{s['tile_hw'][1]}", f"{s['pixels_ratio']:.3f}", fmt(s['time_s'], 1),
                fmt(s['out_mp_s'], 2), times(s.get('time_ratio')), fmt(s['peak_rss_mb'], 0), fmt(s['extra_mb'], 0),
                times(s.get('mem_ratio')), diff('max_abs', 1), diff('mean_abs', 1), every_run(s, 1)]
    header = ['variant', 'tiles', 'tile h×w', 'pixels ÷ photo', 's / photo', 'output MP/s', 'time ÷ untiled', 'peak RSS MiB',
              'extra MiB', 'extra ÷ untiled', 'max abs diff', 'mean abs diff', 's, every run']
    return table(header, 'lrrrrrrrrrrrl', summary_rows(names, summary, cells))


def training_section(args, names, train):
    "The training part of the report, as blocks."
    summary, n_train = train['summary'], train['n_train']
    lr_side, hr_patch = args.hr_size // SCALE, SCALE * args.size
    intro = ['SrResnet(64, 4) (8 EDSR-style res blocks, res_scale 0.1, ICNR pixel-shuffle ×4, random init),',
             f'{args.size}-px LR patches -> {hr_patch}-px targets, batch size {args.bs}, pixel MSE loss, CPU. Each run is a fresh process',
             f'that trains one epoch of exactly {args.warmup} + {args.steps} batches; its step time is the median of the {args.steps} steps',
             f'after the {args.warmup} warm-up steps. Each number is the median over {args.rounds} interleaved round(s). A step = from the',
             'end of one training batch to the end of the next: making the batch (the `fetch ms` column: restorelab reads, decodes',
             'and transforms each item, bare slices tensors in memory), forward, loss, backward, optimizer and scheduler step,',
             'zero_grad, and every callback of restorelab\'s loop. img/s = batch size ÷ the median step time.']
    base = summary.get(BASELINE, {}).get('step_s')
    lines = [f'step ÷ bare-fp32 = the contestant\'s step time ÷ the hand-written loop\'s (the goal: restorelab-fp32 ≤ {GOALS["restorelab-fp32"]}×;',
             'a baseline that is not as fast as a straightforward loop can be would flatter the ratio, see what bare does below).']
    for name in names:
        s = summary.get(name, {})
        if base and 'step_s' in s and name != BASELINE:
            goal = GOALS.get(name)
            lines.append(f"- {name} ÷ bare-fp32: {s['step_s']:.3f} / {base:.3f} = **{s['step_s'] / base:.3f}×**"
                         + (f' (goal ≤ {goal}×)' if goal else ''))
            fb, fs = summary[BASELINE]['fetch_ms'] / 1000, s['fetch_ms'] / 1000   # the same without making the batch
            lines.append(f"  - without the batch fetch (step − fetch): {s['step_s'] - fs:.3f} / {base - fb:.3f} = "
                         f"{(s['step_s'] - fs) / (base - fb):.3f}×; the fetch alone is {fs / base:.1%} of bare-fp32's step")
    params = {n: s['params'] for n, s in summary.items() if 'params' in s}
    if len(params) > 1:
        lines.append(f"- parameters: {', '.join(f'{n} {params[n]:,}' for n in names if n in params)}"
                     + (' (identical)' if len(set(params.values())) == 1 else ' (DIFFER)'))
    lines.append('- as the processes reported them: ' + '; '.join(
        f"{n}: autocast {s['amp_dtype']}, {s['memory_format']} weights, {s['loss_func']}, {s['optimizer']}, batches from {s['loader']},"
        f" OMP_WAIT_POLICY {s['omp_wait_policy']}" for n in names if 'step_s' in (s := summary.get(n, {}))))
    lines.append(f'- bf16: {"native" if args.native_bf16 else "emulated (no avx512_bf16 / amx_bf16: expect it far slower than fp32)" if args.native_bf16 is False else "unknown"} on this CPU.')
    losses = ['Final training loss (median over the runs; a sanity check that every contestant trains, not a comparison: the',
              'crops, flips and batch order differ, and the schedules round differently):', final_losses(names, summary)]
    what = [f'- Data (all): {n_train} train + {args.bs} valid {args.hr_size}×{args.hr_size} synthetic photos (`synth_photo`: a smooth',
            '  random colour field, flat ellipses and rectangles with sharp edges, mild noise) written as PNG into `hr/{train,val}`, and',
            f'  their {lr_side}×{lr_side} copies in `lr/` made with `crappify_folder(path_hr, path_lr, Crappifier([Downscale(4)]))`',
            f'  (MATLAB\'s bicubic ÷4). Per item: a random {args.size}-px crop of the LR photo with the matching {hr_patch}-px HR crop,',
            '  one random dihedral symmetry of the two, ImageNet normalisation of both. The validation batch after the epoch',
            '  (restorelab only: centre crops) is not timed.',
            f'- Training (all): one cycle over the epoch, max lr {2e-3:g}, div 40, pct_start 0.1 (lesson 14\'s `use_clr_beta=(40, 10)`),',
            '  final div 4e5, beta1 0.95→0.85→0.95, Adam with beta2 0.999, decoupled weight decay 1e-2 on every parameter',
            '  (restorelab\'s Learner defaults), `F.mse_loss` on the normalised pixels.',
            '- **restorelab-fp32**: `ImageImageList.from_folder(path_lr).split_by_folder(train=\'train\', valid=\'val\')',
            '  .label_from_func(lambda x: path_hr/x.parent.name/x.name).transform(([rand_crop(), dihedral()], [crop_pad()]),',
            f'  size={args.size}, resize_method=ResizeMethod.NO, tfm_y=True, scale=4).databunch(bs={args.bs}).normalize(imagenet_stats,',
            '  do_y=True)`: a target at another scale has no batched transform, so batches come from a torch DataLoader over the',
            '  items (num_workers 0), each decoded from its two PNG files and transformed (dihedral, then crop) on its own;',
            '  `Learner(data, SrResnet(64, 4), opt_func=optim.Adam, loss_func=F.mse_loss)`, `learn.fit_one_cycle(1, 2e-3,',
            '  div_factor=40, pct_start=0.1)` with a timing callback. Optimizer: `torch.optim.Adam` inside `OptimWrapper`.',
            '- **restorelab-bf16-cl**: the same, then `learn.to_bf16()` (forward under `torch.autocast(\'cpu\', torch.bfloat16)`, the',
            '  loss in float32, float32 weights and optimizer) and `learn.to_channels_last()` (model and input batches channels_last).',
            '- **bare-fp32**: restorelab\'s `SrResnet(64, 4)` (the model is not what is measured) in a plain loop: the train photos',
            '  decoded once (Pillow) into two uint8 tensors; per step a shuffled slice of indices, per image a random crop offset',
            '  (LR slice and the ×4 HR slice) and a random dihedral (flip / transpose of the slice), stacked, then `.float()` with the',
            '  normalisation in place; forward, `F.mse_loss`, backward, `torch.optim.AdamW(weight_decay=1e-2)`, `OneCycleLR(max_lr=2e-3,',
            '  div_factor=40, pct_start=0.1, final_div_factor=1e4, cycle_momentum 0.95/0.85)`, `zero_grad(set_to_none=True)`.',
            '  Profiled alternatives for the batch: vectorised crops (`unfold` + advanced indexing) with the flips per bit on the',
            '  batch took ~15 ms against ~3-4 ms for the per-image slices; the slices are kept.']
    return [['## Training steps'], intro, training_table(names, summary), lines, losses, what]


def inference_section(args, inf):
    "The inference part of the report, as blocks."
    w, h = args.photo_wh
    summary, errors = inf['summary'], inf['errors']
    ref = errors.get('untiled', {})
    intro = [f'SrResnet(64, 4) (random init, seeded, eval mode) on one {w}×{h} synthetic photo (ImageNet-normalised, in host',
             f'memory) -> a {SCALE * w}×{SCALE * h} output, CPU, float32, under `torch.no_grad()`. Each variant is a fresh process:',
             'peak RSS = its `ru_maxrss` (model, photo, torch runtime and the variant\'s own memory); extra = that peak minus the',
             'process\'s peak once the model and photo were built. Time = the forward or the whole `predict_tiled` call (slicing,',
             f'blending, the division by the weights), median of {args.repeats} per run, then over {args.rounds} round(s). Output MP/s =',
             'output megapixels ÷ that time.']
    notes = [f'Tiled variants are named tiled-TILE/OVERLAP/MARGIN (photo pixels). SrResnet\'s receptive field reaches {RF_RADIUS - 0.25} LR',
             'pixels from an output pixel (18 3×3 convolutions at LR scale, the first upsampling convolution, then ½ and ¼ pixel',
             f'for the convolutions at 2× and 4×; measured by perturbing one input pixel), so with a margin ≥ {RF_RADIUS} (`predict_tiled`',
             'gives no weight to the pixels within `margin` of a tile\'s inner edges) every output pixel that gets weight saw',
             'exactly what the untiled forward saw: tiled = untiled up to float rounding (different convolution blockings). With',
             'a smaller margin (`predict_tiled`\'s default is overlap // 4, e.g. 8 for an overlap of 32) pixels that saw a tile\'s',
             'zero padding get some weight: the difference is larger, by how much depends on the weights (this model is random).'
             + (f' The untiled output has standard deviation {ref["ref_std"]:.3f}, mean absolute value {ref["ref_mean_abs"]:.3f}.'
                if ref.get('ref_std') is not None else ''),
             '- untiled memory, estimated before running it (it is skipped when that plus 1 GiB is not available, unless',
             f'  `--force-untiled`): {inf["need_mb"]:,.0f} MiB beyond the model, {UNTILED_TENSORS} float32 tensors of 64 × {SCALE * h}×{SCALE * w} (the last',
             '  upsampling convolution\'s output, its pixel shuffle, the BatchNorm\'s output); '
             + (f'{inf["avail_mb"]:,.0f} MiB were available.' if inf['avail_mb'] is not None else 'available memory unknown.')]
    return [['## Inference: ×4 on one photo, untiled vs `predict_tiled`'], intro, inference_table(inf['names'], summary, errors), notes]


def report(args, names, train, inf, start):
    "Write bench/results/srresnet_step.md (or --out) and print it."
    results = [*(train['results'] if train else []), *(inf['results'] if inf else [])]
    info = machine_info(results, start)
    # (the load at the end includes this benchmark's own processes: only the one at the start says whether others were busy)
    provisional = ([f'> **Measured on a busy machine** (1-min load average {info["loads"][0]:.2f} before it started, on '
                    f'{info["usable"]} usable CPUs): the times are', '> provisional; re-run on a quiet machine before quoting '
                    'them. Ratios taken within one run suffer less.'] if info['loads'][0] > 0.5 else [])
    intro = [f"Generated by `bench/srresnet_step.py` on {info['started']} UTC. Lesson 14's super-resolution network trained and run ×4:",
             'the training step of restorelab against a hand-written PyTorch loop over the same model, and inference on a whole',
             'photo, untiled against `predict_tiled`.']
    blocks = [provisional, intro]
    if train: blocks += training_section(args, names, train)
    if inf: blocks += inference_section(args, inf)
    if train: tail = machine_and_runs(info, train['results'], fastai=False)   # '## Machine', then '## Every run' of the training
    else:
        cpu = [f"- CPU: {info['cpu']}, {info['cores']} cores; torch CPU capability {info['cpu_capability']}; flags: {info['flags']}",
               f"- torch {info['torch']} with {info['threads']} threads; Python {info['python']}"]
        tail = [*machine_section(info, cpu), ['## Every run']]
    if inf:
        tail += [['Inference runs (baseline = the peak RSS once the model and photo are built; RSS then = the resident memory at',
                  'that moment, close to the baseline when setting up left no transient peak):'], infer_runs_table(inf['results'])]
    write_report(args.out, 'Lesson 14 super-resolution: SrResnet ×4 training steps (restorelab vs a hand-written loop) and tiled inference',
                 [*blocks, *tail])


def main():
    args, names = parse_args(__doc__, CONTESTANTS, 'srresnet_step.md', rounds=1, steps=20, warmup=2, check=check, size=48, bs=16,
                             size_help='LR patch side in pixels (the HR patch is 4× it)', min_size=(1, 'pixels'), options=options)
    from restorelab.core import cpu_has_native_bf16
    args.native_bf16 = cpu_has_native_bf16()
    start = started()
    train = inf = None
    if 'training' in args.parts:
        warn_if_emulated_bf16(names, CONTESTANTS)
        # every contestant takes the patch size; the rest of its arguments are unet_step.run_benchmark's
        contestants = {n: (py, script, [*extra, '--size', args.size], what) for n, (py, script, extra, what) in CONTESTANTS.items()}
        train = run_benchmark(args, names, contestants, write_data, 'srresnet_step_', firsts=('loader', 'hr_size'),
                              baseline=BASELINE, ratios=dict(vs_bare='step_s'))
    if 'inference' in args.parts: inf = run_inference(args)
    report(args, names, train, inf, start)


if __name__ == '__main__': main()
