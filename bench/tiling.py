"""Tiled-inference benchmark: a resnet34 DynamicUnet on a 1280x1600 RGB image, one untiled forward vs `predict_tiled`.

Contestants (each run in a fresh process, so each has its own peak memory; printing one JSON line):
  untiled            bench/_tiling.py --mode untiled    model(img[None]) under torch.no_grad()
  tiled-TILE/OVERLAP bench/_tiling.py --mode tiled      restorelab.tiling.predict_tiled(model, img, tile, overlap, pad_to=32)

Memory = peak RSS (ru_maxrss) minus the process's peak after building the model and the image; time = the forward (or the
whole predict_tiled call: slicing, blending and the final division included). The outputs of the first round are compared
with the untiled one (max and mean absolute difference): the U-Net's receptive field is far wider than the overlap, so
tiled is close to, not equal to, untiled.

Run from the repository root with the project venv:
    .venv/bin/python bench/tiling.py [--rounds 2] [--configs 1024/64,768/64,512/64]
Writes bench/results/tiling.md (medians, ratios to untiled, the goals, every run, machine info). It never asserts a time.
"""
import argparse, datetime, inspect, json, os, platform, shlex, statistics, subprocess, sys, tempfile, time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GOALS = dict(memory=0.3, time=1.15)   # the issue: tiled peak memory <= 0.3x and time <= 1.15x of untiled


def log(*args): print(*args, file=sys.stderr, flush=True)


def run_one(name, args, timeout):
    "Run one contestant in a fresh process; its result dict (the last JSON line), or {'name', 'error'}."
    cmd = [sys.executable, str(BENCH/'_tiling.py'), *map(str, args)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    try: proc = subprocess.run(cmd, cwd=BENCH, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f'  {name}: TIMED OUT after {timeout} s')
        return dict(name=name, error=f'timed out after {timeout} s', wall_s=round(time.perf_counter() - t0, 1), load_before=round(load, 2))
    wall = time.perf_counter() - t0
    lines = [l for l in proc.stdout.splitlines() if l.startswith('{')]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ['(no output)'])[-1]
        log(f'  {name}: FAILED (exit {proc.returncode}): {err}')
        return dict(name=name, error=f'exit {proc.returncode}: {err}', wall_s=round(wall, 1), load_before=round(load, 2))
    res = json.loads(lines[-1])
    if res.get('name') != name: raise RuntimeError(f'_tiling.py {args} reported {res.get("name")!r}, expected {name!r}')
    res.update(wall_s=round(wall, 1), load_before=round(load, 2))
    return res


def compare(saved):
    "Max / mean absolute difference of each saved tiled output from the untiled one, and the untiled output's std."
    import torch
    if 'untiled' not in saved: return {}
    ref = torch.load(saved['untiled'], weights_only=True)
    out = {'untiled': dict(ref_std=float(ref.std()), ref_mean_abs=float(ref.abs().mean()))}
    for name, path in saved.items():
        if name == 'untiled': continue
        d = (torch.load(path, weights_only=True) - ref).abs()
        out[name] = dict(max_abs=float(d.max()), mean_abs=float(d.mean()), rel=float(d.mean() / ref.abs().mean()))
    return out


def fmt(x, nd=2): return '–' if x is None else f'{x:,.{nd}f}'


def summarize(results, names):
    "Per contestant: medians over its runs, then time and memory relative to untiled."
    summary = {}
    for name in names:
        ok = [r for r in results if r['name'] == name and 'error' not in r]
        errs = [r['error'] for r in results if r['name'] == name and 'error' in r]
        if not ok:
            summary[name] = dict(error=errs[-1] if errs else 'not run'); continue
        med = lambda k: statistics.median(r[k] for r in ok)
        summary[name] = dict(time_s=med('time_s'), extra_mb=med('extra_mb'), peak_rss_mb=max(r['peak_rss_mb'] for r in ok),
                             baseline_mb=med('baseline_mb'), n_tiles=ok[0]['n_tiles'], tile_hw=ok[0]['tile_hw'],
                             pixels_ratio=ok[0]['pixels_ratio'], runs=[r['time_s'] for r in ok], mems=[r['extra_mb'] for r in ok],
                             failed=len(errs), finite=all(r['finite'] for r in ok))
    base = summary.get('untiled', {})
    for name, s in summary.items():
        if 'time_s' in s and 'time_s' in base:
            s['time_ratio'] = s['time_s'] / base['time_s']
            s['mem_ratio'] = s['extra_mb'] / base['extra_mb'] if base['extra_mb'] > 0 else None
    return summary


def machine_info(results):
    lines = Path('/proc/cpuinfo').read_text().splitlines()
    cpu = next((l.split(':', 1)[1].strip() for l in lines if l.startswith('model name')), platform.processor())
    first = lambda k: next((r[k] for r in results if k in r), None)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=REPO, capture_output=True, text=True).stdout.strip()
    mem = next((l.split(':', 1)[1].strip() for l in Path('/proc/meminfo').read_text().splitlines() if l.startswith('MemTotal')), '?')
    return dict(cpu=cpu, cores=os.cpu_count(), mem=mem, python=platform.python_version(), torch=first('torch'), threads=first('threads'),
                cpu_capability=first('cpu_capability'), params=first('params'),
                commit=commit + (' (with uncommitted changes)' if dirty else ''))


def write_report(out, args, names, summary, results, errors, info, loads, started, default):
    H, W = args.height, args.width
    L = ['# Tiled inference: a resnet34 U-Net on a large image, untiled vs `predict_tiled`', '']
    if args.provisional:
        L += ['> **Provisional numbers**: measured while other jobs were running on the machine (see the load averages below).',
              '> Re-run on a quiet machine before quoting them; the memory column is much less sensitive to the load than the time.', '']
    L += [f'Generated by `bench/tiling.py` on {started} UTC. `DynamicUnet` on a resnet34 body (random init, {info["params"] or 0:,} parameters),',
          f'3 → 3 channels, one {H}×{W} RGB image (seeded noise) in host memory, CPU, float32, under `torch.no_grad()` in eval mode.',
          'Each run is a fresh process: memory = its peak RSS (`ru_maxrss`) minus its peak once the model and the image are built',
          f'(the part that depends on the mode); time = the forward or the whole `predict_tiled` call, median of {args.repeats} per run,',
          f'then median over {args.rounds} interleaved round(s). Tiled runs use `pad_to={args.pad_to}` and `batch_size={args.batch_size}`; '
          f'`predict_tiled`\'s default is tile={default[0]}, overlap={default[1]}.', '',
          '| contestant | tiles | tile h×w | pixels ÷ image | time s | time ÷ untiled | extra memory MiB | memory ÷ untiled | max abs diff | mean abs diff | mean abs diff ÷ mean abs untiled | time s, every run |',
          '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    for name in names:
        s = summary.get(name)
        if s is None: continue
        if 'error' in s:
            L.append(f"| {name} | {s['error']} | | | | | | | | | | |"); continue
        tr, mr = s.get('time_ratio'), s.get('mem_ratio')
        e = errors.get(name, {})
        ok = lambda x, goal: '' if x is None or name == 'untiled' else (' ✓' if x <= goal else ' ✗')
        label = name + (' (default)' if name == f'tiled-{default[0]}/{default[1]}' else '')
        runs = ', '.join(f'{x:.1f}' for x in s['runs']) + (f" ({s['failed']} failed)" if s['failed'] else '')
        L.append(f"| {label} | {s['n_tiles']} | {s['tile_hw'][0]}×{s['tile_hw'][1]} | {s['pixels_ratio']:.3f} | {fmt(s['time_s'], 1)} | "
                 f"{fmt(tr) + '×' if tr else '–'}{ok(tr, GOALS['time'])} | {fmt(s['extra_mb'], 0)} | {fmt(mr) + '×' if mr else '–'}{ok(mr, GOALS['memory'])} | "
                 f"{fmt(e.get('max_abs'), 4) if e.get('max_abs') is not None else '–'} | {fmt(e.get('mean_abs'), 5) if e.get('mean_abs') is not None else '–'} | {fmt(100 * e['rel'], 1) + '%' if 'rel' in e else '–'} | {runs} |")
    ref_std, ref_abs = errors.get('untiled', {}).get('ref_std'), errors.get('untiled', {}).get('ref_mean_abs')
    L += ['', f"Goals (the issue): memory ≤ {GOALS['memory']}× and time ≤ {GOALS['time']}× of untiled (✓ met, ✗ not met in this run).",
          '`pixels ÷ image` is the work the tiles do relative to the image (the overlap\'s cost): time ÷ untiled should be close to it.',
          'Differences are of round 1\'s outputs from the untiled output' + (f' (standard deviation {ref_std:.3f}, mean absolute value {ref_abs:.3f})' if ref_std else '') +
          ': not zero, because the U-Net\'s receptive field', 'is far wider than the overlap (see nbs/24_tiling.ipynb, "The error").', '',
          '## Machine', '',
          f"- CPU: {info['cpu']}, {info['cores']} cores, {info['mem']}; torch CPU capability {info['cpu_capability']}",
          f"- torch {info['torch']} with {info['threads']} threads; Python {info['python']}",
          f"- load average (1 min) at start {loads[0]:.2f}, at end {loads[1]:.2f} (other processes on the machine slow every contestant)",
          f"- commit: {info['commit']}", f"- command: `{args.cmdline}`", '',
          '## Every run', '',
          'Baseline = the peak RSS once the model and image are built; RSS then = the resident memory at that moment (close to the',
          'baseline: setting up left no transient peak that would hide part of a mode\'s memory).', '',
          '| round | contestant | time s | every repeat s | extra memory MiB | peak RSS MiB | baseline MiB | RSS then MiB | wall s | load before |',
          '| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in results:
        if 'error' in r:
            L.append(f"| {r['round']} | {r['name']} | failed: {r['error']} | | | | | | {fmt(r['wall_s'], 1)} | {fmt(r.get('load_before'))} |"); continue
        L.append(f"| {r['round']} | {r['name']} | {fmt(r['time_s'], 2)} | {', '.join(f'{x:.2f}' for x in r['times_s'])} | {fmt(r['extra_mb'], 0)} | "
                 f"{fmt(r['peak_rss_mb'], 0)} | {fmt(r['baseline_mb'], 0)} | {fmt(r.get('rss_before_mb'), 0)} | {fmt(r['wall_s'], 1)} | {fmt(r.get('load_before'))} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text('\n'.join(L) + '\n')
    return '\n'.join(L)


def parse_configs(text):
    "'1024/64,768/64' -> [(1024, 64), (768, 64)]"
    out = []
    for part in filter(None, (p.strip() for p in text.split(','))):
        tile, _, overlap = part.partition('/')
        out.append((int(tile), int(overlap or 0)))
    return out


def main():
    from restorelab.tiling import predict_tiled
    sig = inspect.signature(predict_tiled).parameters
    default = (sig['tile'].default, sig['overlap'].default)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--rounds', type=int, default=1, help='rounds; each runs every contestant once, interleaved (default 1)')
    p.add_argument('--configs', default=','.join(dict.fromkeys([f'{default[0]}/{default[1]}', '1024/64', '768/64', '512/64'])),
                   help="tiled contestants as TILE/OVERLAP, comma-separated (default: predict_tiled's default, 1024/64, 768/64, 512/64)")
    p.add_argument('--no-untiled', action='store_true', help='skip the untiled contestant (no ratios then)')
    p.add_argument('--height', type=int, default=1280)
    p.add_argument('--width', type=int, default=1600)
    p.add_argument('--pad-to', type=int, default=32)
    p.add_argument('--batch-size', type=int, default=1)
    p.add_argument('--repeats', type=int, default=1, help='timed calls per run (default 1: a call at this size takes tens of seconds)')
    p.add_argument('--threads', type=int, default=0, help='torch threads in every contestant (0: torch default)')
    p.add_argument('--timeout', type=int, default=1800, help='seconds allowed per contestant run')
    p.add_argument('--provisional', action='store_true', help='mark the report as measured on a busy machine')
    p.add_argument('--out', type=Path, default=BENCH/'results'/'tiling.md')
    args = p.parse_args()
    for k in ('rounds', 'height', 'width', 'pad_to', 'batch_size', 'repeats'):
        if getattr(args, k) < 1: p.error(f'--{k.replace("_", "-")} must be at least 1')
    args.cmdline = shlex.join([os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable,
                               os.path.relpath(__file__, REPO), *sys.argv[1:]])
    configs = list(dict.fromkeys(parse_configs(args.configs)))   # each once
    names = ([] if args.no_untiled else ['untiled']) + [f'tiled-{t}/{o}' for t, o in configs]
    contestants = {} if args.no_untiled else {'untiled': ['--mode', 'untiled']}
    contestants.update({f'tiled-{t}/{o}': ['--mode', 'tiled', '--tile', t, '--overlap', o] for t, o in configs})
    common = ['--height', args.height, '--width', args.width, '--pad-to', args.pad_to, '--batch-size', args.batch_size,
              '--repeats', args.repeats, '--threads', args.threads]
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')
    loads = [os.getloadavg()[0]]

    results, saved = [], {}
    with tempfile.TemporaryDirectory(prefix='tiling_') as tmp:
        for rnd in range(args.rounds):
            for name, extra in contestants.items():
                log(f'round {rnd + 1}/{args.rounds}: {name}')
                save = ['--save', Path(tmp)/f'{len(saved)}.pt'] if rnd == 0 else []
                r = run_one(name, [*extra, *common, *save], args.timeout)
                r['round'] = rnd + 1
                if 'error' not in r:
                    log(f"  {r['time_s']:.1f} s, extra peak memory {r['extra_mb']:.0f} MiB, {r['n_tiles']} tile(s) of {r['tile_hw']}")
                    if save: saved[name] = save[1]
                results.append(r)
        errors = compare(saved)
    loads.append(os.getloadavg()[0])
    summary = summarize(results, names)
    print(write_report(args.out, args, names, summary, results, errors, machine_info(results), loads, started, default))
    log(f'wrote {os.path.relpath(args.out, REPO) if args.out.resolve().is_relative_to(REPO) else args.out}')


if __name__ == '__main__': main()
