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
import argparse, datetime, os, platform, shlex, statistics, subprocess, sys, tempfile
from pathlib import Path

from _harness import BENCH, REPO, fmt, log, run_one

FASTAI_PY = BENCH/'.venv-fastai'/'bin'/'python'
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
CPU_FLAGS = ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16')   # what bf16 / channels_last speed depends on




def write_data(root, args):
    "The synthetic segmentation folder: warmup+steps batches of train images (one epoch = exactly the steps run), one batch of valid."
    from restorelab.test_utils import synth_segmentation
    n_train = (args.warmup + args.steps) * args.bs
    path = synth_segmentation(Path(root)/'seg', n_train=n_train, n_valid=args.bs, size=(args.size, args.size), n_classes=N_CLASSES, seed=0)
    log(f'synthetic data: {n_train} train + {args.bs} valid {args.size}x{args.size} images, {N_CLASSES} classes, in {path}')
    return path, n_train




def summarize(results, names):
    "Per contestant: medians over its runs (each run's value is already the median of its timed steps)."
    summary = {}
    for name in names:
        ok = [r for r in results if r['name'] == name and 'error' not in r]
        errs = [r['error'] for r in results if r['name'] == name and 'error' in r]
        if not ok:
            summary[name] = dict(error=errs[-1] if errs else 'not run'); continue
        med = lambda k: statistics.median(r[k] for r in ok)
        summary[name] = dict(step_s=med('step_s'), img_s=ok[0]['bs'] / med('step_s'), fetch_ms=med('fetch_ms'), setup_s=med('setup_s'),
                             build_s=med('build_s'), import_s=med('import_s'), peak_rss_mb=max(r['peak_rss_mb'] for r in ok),
                             params=ok[0]['params'], runs=[r['step_s'] for r in ok], failed=len(errs),
                             final_loss=med('final_loss'), memory_format=ok[0]['memory_format'], amp_dtype=ok[0]['amp_dtype'],
                             loss_func=ok[0]['loss_func'], optimizer=ok[0]['optimizer'], omp_wait_policy=ok[0].get('omp_wait_policy'))
    base = summary.get(BASELINE, {}).get('step_s')
    for name, s in summary.items():
        if 'step_s' in s: s['speed_vs_fastai'] = base / s['step_s'] if base else None
    return summary


def machine_info(results):
    lines = Path('/proc/cpuinfo').read_text().splitlines()
    cpu = next((l.split(':', 1)[1].strip() for l in lines if l.startswith('model name')), platform.processor())
    flags = set(next((l.split(':', 1)[1].split() for l in lines if l.startswith('flags')), []))
    first = lambda k: next((r[k] for r in results if k in r), None)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(), torch=first('torch'), threads=first('threads'),
                fastai=first('fastai'), cpu_capability=first('cpu_capability'),
                flags=', '.join(f"{f} {'yes' if f in flags else 'no'}" for f in CPU_FLAGS),
                commit=commit + (' (with uncommitted changes)' if dirty else ''))


def machine_and_runs_lines(args, info, loads, results):
    "The report's '## Machine' and '## Every run' sections (every run's medians, then every step and loss)."
    L = ['## Machine', '',
         f"- CPU: {info['cpu']}, {info['cores']} cores; torch CPU capability {info['cpu_capability']}; flags: {info['flags']}",
         f"- torch {info['torch']} with {info['threads']} threads; Python {info['python']}; fastai {info['fastai'] or '–'} (own venv)",
         f"- load average (1 min) at start {loads[0]:.2f}, at end {loads[1]:.2f} (other processes on the machine slow every contestant)",
         f"- commit: {info['commit']}", f"- command: `{args.cmdline}`", '',
         '## Every run', '',
         '| round | contestant | step s (median) | min | max | img/s | fetch ms | warm-up steps s | final loss | peak RSS MiB | wall s | load before |',
         '| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |']
    for r in results:
        if 'error' in r:
            L.append(f"| {r['round']} | {r['name']} | failed: {r['error']} | | | | | | | | {fmt(r['wall_s'], 1)} | {fmt(r.get('load_before'))} |"); continue
        L.append(f"| {r['round']} | {r['name']} | {fmt(r['step_s'], 3)} | {fmt(r['step_min_s'], 3)} | {fmt(r['step_max_s'], 3)} | "
                 f"{fmt(r['img_s'], 2)} | {fmt(r['fetch_ms'], 1)} | {', '.join(f'{x:.2f}' for x in r['warmup_s'])} | {fmt(r['final_loss'], 3)} | "
                 f"{fmt(r['peak_rss_mb'], 0)} | {fmt(r['wall_s'], 1)} | {fmt(r.get('load_before'))} |")
    L += ['', 'Every timed step, per run (seconds), and the training loss of every step (warm-up included):', '']
    for r in results:
        if 'error' in r: continue
        L.append(f"- round {r['round']} {r['name']}: {', '.join(f'{x:.3f}' for x in r['steps_s'])}")
        L.append(f"  - losses: {', '.join(f'{x:.3f}' for x in r['losses'])}")
    return L


def write_report(out, args, names, summary, results, info, loads, started, n_train):
    L = ['# U-Net training steps: restorelab (fp32, bf16 + channels_last) vs fastai', '',
         f'Generated by `bench/unet_step.py` on {started} UTC. U-Net on a resnet34 body (random init), {args.size}×{args.size} RGB,',
         f'batch size {args.bs}, {N_CLASSES} classes, CPU. Each run is a fresh process that trains one epoch of exactly '
         f'{args.warmup} + {args.steps} batches; its',
         f'step time is the median of the {args.steps} steps after the {args.warmup} warm-up steps. Each number below is the median over',
         f'{args.rounds} interleaved round(s). A step = from the end of one training batch to the end of the next: fetching the batch,',
         'forward, loss, backward, optimizer step, zero_grad and every callback of the library\'s own loop.', '',
         '| contestant | step s | img/s | speed vs fastai-fp32 | goal | fetch ms | params | peak RSS MiB | setup s | build s | import s | step s, every run |',
         '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    for name in names:
        s = summary.get(name)
        if s is None: continue
        if 'error' in s:
            L.append(f"| {name} | {s['error']} | | | | | | | | | | |"); continue
        goal = GOALS.get(name)
        speed = s.get('speed_vs_fastai')
        met = '' if goal is None or speed is None else (' (met)' if speed >= goal else ' (not met)')
        runs = ', '.join(f'{x:.3f}' for x in s['runs']) + (f" ({s['failed']} failed)" if s['failed'] else '')
        L.append(f"| {name} | {fmt(s['step_s'], 3)} | {fmt(s['img_s'], 2)} | {fmt(speed) + '×' if speed else '–'} | {'≥ ' + fmt(goal, 1) + '×' + met if goal else '–'} | "
                 f"{fmt(s['fetch_ms'], 1)} | {s['params']:,} | {fmt(s['peak_rss_mb'], 0)} | {fmt(s['setup_s'])} | {fmt(s['build_s'])} | "
                 f"{fmt(s['import_s'])} | {runs} |")
    base = summary.get(BASELINE, {}).get('step_s')
    L += ['', f'Speed vs fastai-fp32 = fastai-fp32 step time ÷ the contestant\'s step time (> 1: faster than fastai).']
    for name, goal in GOALS.items():
        s = summary.get(name, {})
        if base and 'step_s' in s:
            L.append(f"- fastai-fp32 ÷ {name}: {base:.3f} / {s['step_s']:.3f} = **{base / s['step_s']:.2f}×** (goal ≥ {goal}×)")
    params = {n: s['params'] for n, s in summary.items() if 'params' in s}
    if len(params) > 1:
        lo, hi = min(params.values()), max(params.values())
        L.append(f"- parameters: {', '.join(f'{n} {params[n]:,}' for n in names if n in params)}"
                 + (' (identical)' if lo == hi else f' (differ by {100 * (hi - lo) / lo:.2f}%)'))
    L.append('- as the processes reported them: ' + '; '.join(
        f"{n} autocast {summary[n]['amp_dtype']}, {summary[n]['memory_format']} weights, {summary[n]['loss_func']}, {summary[n]['optimizer']}"
        for n in names if 'step_s' in summary.get(n, {})))
    L += ['', 'Final training loss (median over the runs; a sanity check that every contestant trains, not a comparison: the',
          'batches come in a different order in each library):',
          ', '.join(f"{n} {fmt(summary[n]['final_loss'], 3)}" for n in names if 'final_loss' in summary.get(n, {})), '',
          '## What each contestant does', '',
          f'- Data (all): `restorelab.test_utils.synth_segmentation` writes {n_train} train + {args.bs} valid {args.size}×{args.size} PNG images',
          f'  with masks of {N_CLASSES} classes into a temporary folder; both libraries decode them once into memory, so a batch fetch',
          '  (the `fetch ms` column, which also holds the `before_batch` callbacks) is small next to a step. No augmentation; inputs',
          '  normalised with the ImageNet stats. The one validation batch after the epoch is not timed.',
          f'- Training (all): one cycle over the epoch, max lr {1e-3:g}, pct_start 0.3, div 25, final div 25e4, beta1 0.95→0.85→0.95,',
          '  Adam beta2 0.99, decoupled weight decay 1e-2, cross-entropy over the 12 classes on every pixel (flattened, axis=1).',
          '- **restorelab-fp32**: `SegmentationItemList.from_folder(path, preload=True).split_by_folder(train=\'train\', valid=\'val\')',
          f'  .label_from_func(get_y_fn, classes=codes, preload=True).databunch(bs={args.bs}).normalize(imagenet_stats)` (the uint8 tensors are',
          '  indexed per batch), `unet_learner(data, models.resnet34, pretrained=False, silent=True)`, `learn.fit_one_cycle(1, 1e-3)` with',
          '  a timing callback. Optimizer: `torch.optim.Adam` (betas 0.9, 0.99) inside `OptimWrapper` (true weight decay, on every',
          '  parameter: v1\'s `bn_wd=True`). Loss: the masks\' `CrossEntropyFlat(axis=1)`.',
          '- **restorelab-bf16-cl**: the same, then `learn.to_bf16()` (forward and loss under `torch.autocast(\'cpu\', torch.bfloat16)`,',
          '  the loss in float32, float32 weights and optimizer) and `learn.to_channels_last()` (model and image batches channels_last).',
          '- **fastai-fp32**: the same images decoded into uint8 arrays, `DataBlock(blocks=(ImageBlock, MaskBlock(codes)), get_x/get_y',
          '  indexing the arrays, splitter=IndexSplitter(valid), batch_tfms=Normalize.from_stats(*imagenet_stats))` with num_workers=0',
          '  (per item: array → PILImage/PILMask → tensor, then collate, IntToFloatTensor, Normalize), `unet_learner(dls, resnet34,',
          '  pretrained=False, n_out=12, loss_func=CrossEntropyLossFlat(axis=1))`, `fit_one_cycle(1, 1e-3, pct_start=0.3, div_final=25e4)`',
          '  inside `no_bar()` and `no_logging()`, with a timing callback. Optimizer: fastai\'s own `Adam` (sqr_mom 0.99, eps 1e-5, true',
          '  weight decay, none on BatchNorm/bias: fastai\'s `wd_bn_bias=False`).', '',
          'Both U-Nets are fastai\'s DynamicUnet layout (resnet34 body cut before the pooling, middle conv, UnetBlocks with PixelShuffle_ICNR,',
          'blur_final, last_cross ResBlock, final 1×1 conv), which is why their parameter counts can be compared one to one.', '',
          *machine_and_runs_lines(args, info, loads, results)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text('\n'.join(L) + '\n')
    return '\n'.join(L)


def parse_args(description, contestants, default_out):
    "The options every step benchmark takes (unet_step.py, superres_step.py); `(args, names of the contestants to run)`."
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--rounds', type=int, default=2, help='rounds; each runs every contestant once, interleaved (default 2)')
    p.add_argument('--only', default=','.join(contestants), help='comma-separated contestants (default: all three)')
    p.add_argument('--steps', type=int, default=20, help='timed training steps per run (default 20)')
    p.add_argument('--warmup', type=int, default=3, help='untimed training steps before them (default 3)')
    p.add_argument('--size', type=int, default=128, help='image side in pixels (default 128)')
    p.add_argument('--bs', type=int, default=8, help='batch size (default 8)')
    p.add_argument('--threads', type=int, default=0, help='torch threads in every contestant (0: torch default)')
    p.add_argument('--timeout', type=int, default=1800, help='seconds allowed per contestant run')
    p.add_argument('--omp-wait-policy', choices=['PASSIVE', 'ACTIVE'], default='PASSIVE',
                   help='OMP_WAIT_POLICY of every contestant (default PASSIVE, what restorelab sets when imported; fastai alone '
                        'would leave OpenMP threads spinning while they wait, several times slower on a busy machine)')
    p.add_argument('--out', type=Path, default=default_out)
    args = p.parse_args()
    for k in ('rounds', 'steps', 'size', 'bs'):
        if getattr(args, k) < 1: p.error(f'--{k} must be at least 1 (got {getattr(args, k)})')
    if args.warmup < 0: p.error(f'--warmup must be at least 0 (got {args.warmup})')
    if args.size < 32: p.error(f'--size must be at least 32 (the resnet34 body downsamples 32×), got {args.size}')
    args.cmdline = shlex.join([os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable,
                               os.path.relpath(os.path.abspath(sys.argv[0]), REPO), *sys.argv[1:]])
    names = [n.strip() for n in args.only.split(',') if n.strip()]
    bad = [n for n in names if n not in contestants]
    if bad: p.error(f'--only: unknown contestant(s) {bad}; choose from {list(contestants)}')
    return args, names


def run_benchmark(args, names, contestants, write_data, prefix):
    """Write the data once (`write_data(tmp_folder, args) -> (path, n_train)`) into a temporary folder named `prefix`...,
    run every contestant once per round, interleaved; a dict of the results, their summary, the machine, loads and start time."""
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')
    loads = [os.getloadavg()[0]]

    runnable, summary = [], {}
    for name in names:
        if contestants[name][0] == FASTAI_PY and not FASTAI_PY.exists():
            summary[name] = dict(error='not run: no bench/.venv-fastai (run `bash bench/setup_fastai_venv.sh`)')
        else: runnable.append(name)

    results = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path, n_train = write_data(tmp, args)
        # restorelab's preload caches decoded images under $RESTORELAB_HOME/cache: keep that inside the temporary folder
        env = dict(os.environ, RESTORELAB_HOME=str(Path(tmp)/'home'))
        # the same for every contestant (this process has imported restorelab, which set PASSIVE in os.environ unless it was set)
        env['OMP_WAIT_POLICY'] = args.omp_wait_policy
        common = ['--path', path, '--bs', args.bs, '--warmup', args.warmup, '--steps', args.steps, '--threads', args.threads]
        for rnd in range(args.rounds):
            for name in runnable:
                log(f'round {rnd + 1}/{args.rounds}: {name}')
                python, script, extra, _ = contestants[name]
                r = run_one(name, python, script, [*common, '--seed', rnd, *extra], env=env, timeout=args.timeout)
                r['round'] = rnd + 1
                if 'error' not in r:
                    log(f"  step {r['step_s']:.3f} s (median of {args.steps}), {r['img_s']:.2f} img/s, fetch {r['fetch_ms']:.1f} ms, "
                        f"params {r['params']:,}, peak RSS {r['peak_rss_mb']:.0f} MiB")
                results.append(r)
    loads.append(os.getloadavg()[0])
    summary.update(summarize(results, runnable))
    return dict(results=results, summary=summary, info=machine_info(results), loads=loads, started=started, n_train=n_train)


def log_written(out): log(f'wrote {os.path.relpath(out, REPO) if out.resolve().is_relative_to(REPO) else out}')


def main():
    args, names = parse_args(__doc__, CONTESTANTS, BENCH/'results'/'unet_step.md')
    run = run_benchmark(args, names, CONTESTANTS, write_data, 'unet_step_')
    print(write_report(args.out, args, names, run['summary'], run['results'], run['info'], run['loads'], run['started'], run['n_train']))
    log_written(args.out)


if __name__ == '__main__': main()
