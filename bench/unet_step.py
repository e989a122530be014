"""U-Net training-step benchmark: resnet34 U-Net, 128x128 RGB, batch size 8, 12 classes; restorelab (fp32, bf16+channels_last) vs fastai.

Contestants (each run in a fresh process, printing one JSON line):
  restorelab-fp32     bench/_unet_restorelab.py                     unet_learner(data, models.resnet34, pretrained=False) + fit_one_cycle
  restorelab-bf16-cl  bench/_unet_restorelab.py --bf16 --channels-last  the same after learn.to_bf16() and learn.to_channels_last()
  fastai-fp32         bench/_unet_fastai.py                         fastai 2.8.12 unet_learner(dls, resnet34, pretrained=False, n_out=12)

All train one epoch of exactly --warmup + --steps batches of a synthetic CamVid-like set (restorelab.test_utils.synth_segmentation,
written once into a temporary folder, held in memory by both libraries); the median of the steps after the warm-up is reported.

Run from the repository root with the project venv:
    .venv/bin/python bench/unet_step.py [--rounds 2] [--steps 20] [--only restorelab-fp32,fastai-fp32]
Writes bench/results/unet_step.md (medians, speed relative to fastai, every run, machine info). A benchmark: it never asserts a time.
"""
import os, sys, tempfile
from pathlib import Path

from _harness import (FASTAI_PY, add_process_options, every_run, fmt, log, machine_info, machine_section, not_runnable, only,
                      option_parser, parse_options, run_one, run_rounds, started, summarize, summary_rows, table, times, write_report)

N_CLASSES = 12
# name: (python, script, extra args, what it is)
CONTESTANTS = {
    'restorelab-fp32': (Path(sys.executable), '_unet_restorelab.py', [], 'restorelab, float32'),
    'restorelab-bf16-cl': (Path(sys.executable), '_unet_restorelab.py', ['--bf16', '--channels-last'],
                           'restorelab, `learn.to_bf16()` + `learn.to_channels_last()`'),
    'fastai-fp32': (FASTAI_PY, '_unet_fastai.py', [], 'fastai 2.8.12, float32'),
}
BASELINE = 'fastai-fp32'
GOALS = {'restorelab-fp32': 1.0, 'restorelab-bf16-cl': 1.8}   # the issue: speed relative to fastai-fp32 (its step time ÷ ours)


def write_data(root, args):
    "The synthetic segmentation folder: warmup+steps batches of train images (one epoch = exactly the steps run), one batch of valid."
    from restorelab.test_utils import synth_segmentation
    n_train = (args.warmup + args.steps) * args.bs
    path = synth_segmentation(Path(root)/'seg', n_train=n_train, n_valid=args.bs, size=(args.size, args.size), n_classes=N_CLASSES, seed=0)
    log(f'synthetic data: {n_train} train + {args.bs} valid {args.size}x{args.size} images, {N_CLASSES} classes, in {path}')
    return path, n_train


# ---- what every step benchmark shares (superres_step.py, gan_step.py and srresnet_step.py import it) ----
def parse_args(description, contestants, report, rounds=2, steps=20, warmup=3, check=None, size=128, bs=8,
               size_help='image side in pixels', min_size=(32, 'the resnet34 body downsamples 32×'), options=None):
    """The options every step benchmark takes (unet_step.py, superres_step.py, gan_step.py, srresnet_step.py), with the defaults
    `rounds`, `steps`, `warmup`, `size` (what it is: `size_help`; at least `min_size` = (pixels, why)) and `bs`; `options(parser)`
    adds a benchmark's own options, `check(parser, args)` its own checks. `(args, names of the contestants to run)`."""
    p = option_parser(description, rounds=rounds)
    p.add_argument('--only', default=','.join(contestants), help='comma-separated contestants (default: all three)')
    p.add_argument('--steps', type=int, default=steps, help=f'timed training steps per run (default {steps})')
    p.add_argument('--warmup', type=int, default=warmup, help=f'untimed training steps before them (default {warmup})')
    p.add_argument('--size', type=int, default=size, help=f'{size_help} (default {size})')
    p.add_argument('--bs', type=int, default=bs, help=f'batch size (default {bs})')
    add_process_options(p)
    p.add_argument('--omp-wait-policy', choices=['PASSIVE', 'ACTIVE'], default='PASSIVE',
                   help='OMP_WAIT_POLICY of every contestant (default PASSIVE, what restorelab sets when imported; fastai alone '
                        'would leave OpenMP threads spinning while they wait, several times slower on a busy machine)')
    if options: options(p)
    args = parse_options(p, report)
    for k in ('rounds', 'steps', 'size', 'bs'):
        if getattr(args, k) < 1: p.error(f'--{k} must be at least 1 (got {getattr(args, k)})')
    if args.warmup < 0: p.error(f'--warmup must be at least 0 (got {args.warmup})')
    if args.size < min_size[0]: p.error(f'--size must be at least {min_size[0]} ({min_size[1]}), got {args.size}')
    if check: check(p, args)
    return args, only(p, args.only, contestants)


def describe_step(r):
    "The line logged for a successful run of a step benchmark."
    return (f"  step {r['step_s']:.3f} s (median of {len(r['steps_s'])}), {r['img_s']:.2f} img/s, fetch {r['fetch_ms']:.1f} ms, "
            f"params {r['params']:,}, peak RSS {r['peak_rss_mb']:.0f} MiB")


def run_benchmark(args, names, contestants, write_data, prefix, describe=describe_step, medians=(), firsts=(), speedups=None,
                  baseline=BASELINE, ratios=None):
    """Write the data once (`write_data(tmp_folder, args) -> (path, n_train)`) into a temporary folder named `prefix`...,
    run every contestant once per round, interleaved; a dict of the results, their summary, the machine and n_train.
    `describe(result)` is the line logged per run; `medians`, `firsts`, `speedups` and `ratios` (against `baseline`, by default
    fastai-fp32, which also gives every contestant its `speed_vs_fastai`) extend the summary (see `_harness.summarize`) with a
    benchmark's own fields."""
    start = started()
    runnable, summary = [], {}
    for name in names:
        if why := not_runnable(contestants[name][0]): summary[name] = dict(error=why)
        else: runnable.append(name)

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path, n_train = write_data(tmp, args)
        # restorelab's preload caches decoded images under $RESTORELAB_HOME/cache: keep that inside the temporary folder
        env = dict(os.environ, RESTORELAB_HOME=str(Path(tmp)/'home'))
        # the same for every contestant (this process has imported restorelab, which set PASSIVE in os.environ unless it was set)
        env['OMP_WAIT_POLICY'] = args.omp_wait_policy
        common = ['--path', path, '--bs', args.bs, '--warmup', args.warmup, '--steps', args.steps, '--threads', args.threads]
        def run(name, rnd):
            python, script, extra, _ = contestants[name]
            return run_one(name, python, script, [*common, '--seed', rnd, *extra], env=env, timeout=args.timeout)
        results = run_rounds(args.rounds, runnable, run, describe)
    info = machine_info(results, start)
    summary.update(summarize(results, runnable, 'step_s',
                             medians=('fetch_ms', 'setup_s', 'build_s', 'import_s', 'final_loss', *medians),
                             firsts=('params', 'memory_format', 'amp_dtype', 'loss_func', 'optimizer', 'omp_wait_policy', *firsts),
                             images='bs', baseline=baseline, ratios=ratios,
                             speedups=dict(speed_vs_fastai='step_s', **(speedups or {})) if baseline == BASELINE else speedups))
    return dict(results=results, summary=summary, info=info, n_train=n_train)


def goal_cell(goal, speed):
    "A table cell: the goal (a speed relative to fastai-fp32, or None) and whether `speed` met it."
    if not goal: return '–'
    return f'≥ {fmt(goal, 1)}×' + ('' if speed is None else (' (met)' if speed >= goal else ' (not met)'))


def step_table(names, summary, goals=None):
    "The medians of each contestant, its speed relative to fastai-fp32 (with `goals`: the goal it had to reach), every run's step time."
    cells = lambda name, s: [name, fmt(s['step_s'], 3), fmt(s['img_s'], 2), times(s['speed_vs_fastai']),
                             *([goal_cell(goals.get(name), s['speed_vs_fastai'])] if goals else []),
                             fmt(s['fetch_ms'], 1), f"{s['params']:,}",
                             fmt(s['peak_rss_mb'], 0), fmt(s['setup_s']), fmt(s['build_s']), fmt(s['import_s']), every_run(s, 3)]
    header = ['contestant', 'step s', 'img/s', 'speed vs fastai-fp32', *(['goal'] if goals else []), 'fetch ms', 'params',
              'peak RSS MiB', 'setup s', 'build s', 'import s', 'step s, every run']
    return table(header, 'l' + 'r' * (len(header) - 2) + 'l', summary_rows(names, summary, cells))


def speed_lines(names, summary, goals=None, model='', omp=False, steps=(('step_s', ''),)):
    """The bullets under the table: each contestant's speed vs fastai-fp32 worked out (with its goal), the parameter counts side by
    side and what the processes reported (`model`: what the parameters and weights are of; `omp`: with their OMP_WAIT_POLICY).
    `steps`: the (summary key, label) of each kind of step to work the speed out for (default: the one step time)."""
    L = []
    for key, label in steps:
        base = summary.get(BASELINE, {}).get(key)
        for name in names:
            s, goal = summary.get(name, {}), (goals or {}).get(name)
            if base and key in s and name != BASELINE:
                L.append(f"- fastai-fp32 ÷ {name}{label}: {base:.3f} / {s[key]:.3f} = **{base / s[key]:.2f}×**"
                         + (f' (goal ≥ {goal}×)' if goal else ''))
    params = {n: s['params'] for n, s in summary.items() if 'params' in s}
    if len(params) > 1:
        lo, hi = min(params.values()), max(params.values())
        L.append(f"- {model}parameters: {', '.join(f'{n} {params[n]:,}' for n in names if n in params)}"
                 + (' (identical)' if lo == hi else f' (differ by {100 * (hi - lo) / lo:.2f}%)'))
    L.append('- as the processes reported them: ' + '; '.join(
        f"{n} autocast {s['amp_dtype']}, {s['memory_format']} {model}weights, {s['loss_func']}, {s['optimizer']}"
        + (f", OMP_WAIT_POLICY {s['omp_wait_policy']}" if omp else '')
        for n in names if 'step_s' in (s := summary.get(n, {}))))
    return L


def final_losses(names, summary):
    "Each contestant's median final training loss, on one line."
    return ', '.join(f"{n} {fmt(summary[n]['final_loss'], 3)}" for n in names if 'final_loss' in summary.get(n, {}))


def runs_table(results):
    "Every run's medians, failed runs included."
    header = ['round', 'contestant', 'step s (median)', 'min', 'max', 'img/s', 'fetch ms', 'warm-up steps s', 'final loss',
              'peak RSS MiB', 'wall s', 'load before']
    def cells(r):
        if 'error' in r: return [r['round'], r['name'], f"failed: {r['error']}", *[None] * 7, fmt(r['wall_s'], 1), fmt(r.get('load_before'))]
        return [r['round'], r['name'], fmt(r['step_s'], 3), fmt(r['step_min_s'], 3), fmt(r['step_max_s'], 3), fmt(r['img_s'], 2),
                fmt(r['fetch_ms'], 1), ', '.join(f'{x:.2f}' for x in r['warmup_s']), fmt(r['final_loss'], 3),
                fmt(r['peak_rss_mb'], 0), fmt(r['wall_s'], 1), fmt(r.get('load_before'))]
    return table(header, 'rlrrrrrlrrrr', map(cells, results))


def _labelled(xs, phases, nd):
    "Numbers comma-separated, each after its phase letter when there are phases (a GAN's G/C steps)."
    return ', '.join(f'{p}{x:.{nd}f}' for p, x in zip(phases or [''] * len(xs), xs))


def machine_and_runs(info, results, runs=runs_table, phase_note='', fastai=True):
    """The report's '## Machine' and '## Every run' sections (the table `runs(results)` of every run's medians, then every step
    and loss, each after its phase letter when a run reports `phases`, which `phase_note` explains), as blocks. `fastai`:
    whether the benchmark has a fastai contestant, whose version the machine section then gives."""
    cpu = [f"- CPU: {info['cpu']}, {info['cores']} cores; torch CPU capability {info['cpu_capability']}; flags: {info['flags']}",
           f"- torch {info['torch']} with {info['threads']} threads; Python {info['python']}"
           + (f"; fastai {info['fastai'] or '–'} (own venv)" if fastai else '')]
    steps = [line for r in results if 'error' not in r
             for line in (f"- round {r['round']} {r['name']}: {_labelled(r['steps_s'], r.get('phases', '')[len(r['warmup_s']):], 3)}",
                          f"  - losses: {_labelled(r['losses'], r.get('phases'), 3)}")]
    return [*machine_section(info, cpu), ['## Every run'], runs(results),
            ['Every timed step, per run (seconds), and the training loss of every step (warm-up included)' + phase_note + ':'], steps]


# ---- this benchmark's report ----
def report(args, names, run):
    "Write bench/results/unet_step.md (or --out) and print it."
    summary, info, n_train = run['summary'], run['info'], run['n_train']
    intro = [f"Generated by `bench/unet_step.py` on {info['started']} UTC. U-Net on a resnet34 body (random init), {args.size}×{args.size} RGB,",
             f'batch size {args.bs}, {N_CLASSES} classes, CPU. Each run is a fresh process that trains one epoch of exactly '
             f'{args.warmup} + {args.steps} batches; its',
             f'step time is the median of the {args.steps} steps after the {args.warmup} warm-up steps. Each number below is the median over',
             f'{args.rounds} interleaved round(s). A step = from the end of one training batch to the end of the next: fetching the batch,',
             'forward, loss, backward, optimizer step, zero_grad and every callback of the library\'s own loop.']
    speed = ['Speed vs fastai-fp32 = fastai-fp32 step time ÷ the contestant\'s step time (> 1: faster than fastai).',
             *speed_lines(names, summary, GOALS)]
    losses = ['Final training loss (median over the runs; a sanity check that every contestant trains, not a comparison: the',
              'batches come in a different order in each library):', final_losses(names, summary)]
    what = [f'- Data (all): `restorelab.test_utils.synth_segmentation` writes {n_train} train + {args.bs} valid {args.size}×{args.size} PNG images',
            f'  with masks of {N_CLASSES} classes into a temporary folder; both libraries decode them once into memory, so a batch fetch',
            '  (the `fetch ms` column, which also holds the `before_batch` callbacks) is small next to a step. No augmentation; inputs',
            '  normalised with the ImageNet stats. The one validation batch after the epoch is not timed.',
            f'- Training (all): one cycle over the epoch, max lr {1e-3:g}, pct_start 0.3, div 25, final div 25e4, beta1 0.95→0.85→0.95,',
            '  Adam beta2 0.99, decoupled weight decay 1e-2, cross-entropy over the 12 classes on every pixel (flattened, axis=1).',
            '- **restorelab-fp32**: `SegmentationItemList.from_folder(path, preload=True).split_by_folder(train=\'train\', valid=\'val\')',
            f'  .label_from_func(get_y_fn, classes=codes, preload=True).databunch(bs={args.bs}).normalize(imagenet_stats)` (the uint8 tensors are',
            '  indexed per batch), `unet_learner(data, models.resnet34, pretrained=False, silent=True)`, `learn.fit_one_cycle(1, 1e-3)` with',
            '  a timing callback. Optimizer: `OptimWrapper` over torch\'s fused `AdamW` (betas 0.9, 0.99; v1\'s Adam + true weight',
            '  decay, on every parameter: v1\'s `bn_wd=True`). Loss: the masks\' `CrossEntropyFlat(axis=1)`.',
            '- **restorelab-bf16-cl**: the same, then `learn.to_bf16()` (forward and loss under `torch.autocast(\'cpu\', torch.bfloat16)`,',
            '  the loss in float32, float32 weights and optimizer) and `learn.to_channels_last()` (model and image batches channels_last).',
            '- **fastai-fp32**: the same images decoded into uint8 arrays, `DataBlock(blocks=(ImageBlock, MaskBlock(codes)), get_x/get_y',
            '  indexing the arrays, splitter=IndexSplitter(valid), batch_tfms=Normalize.from_stats(*imagenet_stats))` with num_workers=0',
            '  (per item: array → PILImage/PILMask → tensor, then collate, IntToFloatTensor, Normalize), `unet_learner(dls, resnet34,',
            '  pretrained=False, n_out=12, loss_func=CrossEntropyLossFlat(axis=1))`, `fit_one_cycle(1, 1e-3, pct_start=0.3, div_final=25e4)`',
            '  inside `no_bar()` and `no_logging()`, with a timing callback. Optimizer: fastai\'s own `Adam` (sqr_mom 0.99, eps 1e-5, true',
            '  weight decay, none on BatchNorm/bias: fastai\'s `wd_bn_bias=False`).']
    layout = ['Both U-Nets are fastai\'s DynamicUnet layout (resnet34 body cut before the pooling, middle conv, UnetBlocks with PixelShuffle_ICNR,',
              'blur_final, last_cross ResBlock, final 1×1 conv), which is why their parameter counts can be compared one to one.']
    write_report(args.out, 'U-Net training steps: restorelab (fp32, bf16 + channels_last) vs fastai',
                 [intro, step_table(names, summary, GOALS), speed, *run.get('fraction', []), losses,
                  ['## What each contestant does'], what, layout, *machine_and_runs(info, run['results'])])


def machine_fraction(args, summary):
    "How close each restorelab contestant comes to the machine: its achieved FLOP/s over the measured matmul peak."
    r = run_one('matmul-peak', sys.executable, '_matmul_peak.py', ['--threads', args.threads])
    if 'error' in r: return [[f"Matmul peak not measured: {r['error']}"]]
    rows = []
    for name in ('restorelab-fp32', 'restorelab-bf16-cl'):
        s = summary.get(name)
        if not s or 'error' in s or not s.get('step_gflop'): continue
        achieved = s['step_gflop'] / s['step_s']
        precision = 'bf16' if 'bf16' in name else 'fp32'
        peak = r[f'{precision}_gflops']
        rows.append([name, fmt(s['step_gflop'], 1), fmt(achieved, 1), f'{precision}: {peak:,.1f}', f'{achieved / peak:.1%}'])
    return [['## How close to the machine'],
            [f"Measured matmul peak on this CPU ({r['threads']} threads, `bench/_matmul_peak.py`, best of square products of "
             f"2048 and 4096): **{r['fp32_gflops']:,.1f} GFLOP/s in float32, {r['bf16_gflops']:,.1f} GFLOP/s in bfloat16** "
             f"(torch CPU capability {r['cpu_capability']})."],
            table(['contestant', 'GFLOP per step', 'achieved GFLOP/s', 'peak of its precision, GFLOP/s', 'fraction of that peak'], 'lrrrr', rows),
            ['GFLOP per step: forward, loss and backward of one training batch, counted by `torch.utils.flop_counter.FlopCounterMode`',
             '(convolutions and matmuls; the optimizer, BatchNorm and elementwise work are not counted). Achieved = that ÷ the',
             "median step time. A U-Net's convolutions are smaller and less regular than a big square matmul, so the fraction",
             'measures how much of the step is spent in well-used arithmetic, not a target of 100%.']]


def main():
    args, names = parse_args(__doc__, CONTESTANTS, 'unet_step.md')
    run = run_benchmark(args, names, CONTESTANTS, write_data, 'unet_step_', firsts=('step_gflop',))
    run['fraction'] = machine_fraction(args, run['summary'])
    report(args, names, run)


if __name__ == '__main__': main()
