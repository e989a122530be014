"""MNIST epoch benchmark: one training epoch of the lesson's ResNet-ish on full MNIST, three ways, interleaved.

Contestants (each run in a fresh process, printing one JSON line):
  bare        bench/_bare.py        hand-written PyTorch loop over uint8 tensors decoded once (project venv)
  restorelab  bench/_restorelab.py  the lesson's data block chain + Learner.fit_one_cycle (project venv)
  fastai      bench/_fastai.py      fastai 2.8.12 DataBlock + Learner.fit_one_cycle (bench/.venv-fastai, see setup_fastai_venv.sh)

Run from the repository root with the project venv:
    .venv/bin/python bench/mnist_epoch.py [--rounds 2] [--only bare,fastai]
Writes bench/results/mnist_epoch.md (medians, ratios to bare, every run, machine info). A benchmark: it never asserts a time.
"""
import argparse, datetime, importlib.util, os, platform, shlex, statistics, subprocess, sys, tarfile, tempfile
from pathlib import Path

from _harness import BENCH, REPO, fmt, log, run_one

CONTESTANTS = ('bare', 'restorelab', 'fastai')
FASTAI_PY = BENCH/'.venv-fastai'/'bin'/'python'
SHARED_DATA = REPO.parent/'shared'/'data'        # the offline archives, beside the checkout
ARCHIVE = 'mnist_png.tgz'




def has_module(name):
    "Whether `name` (dotted) can be imported, without importing more than its parent packages."
    parts = name.split('.')
    return all(importlib.util.find_spec('.'.join(parts[:i])) is not None for i in range(1, len(parts) + 1))


def mnist_path():
    "The mnist_png folder: restorelab's `untar_data(URLs.MNIST)` when the library has it, else the archive extracted into bench/.data."
    if has_module('restorelab.data.external'):
        from restorelab.data.external import URLs, untar_data
        return Path(untar_data(URLs.MNIST, show_progress=False)), 'restorelab.data.external.untar_data(URLs.MNIST)'
    sys.path.insert(0, str(BENCH))
    import _common
    dest = _common.ensure_data_dir()/'mnist_png'
    if not (dest/'training').is_dir() or not (dest/'testing').is_dir():
        archive = Path(os.environ.get('RESTORELAB_ARCHIVE', str(SHARED_DATA)).split(os.pathsep)[0])/ARCHIVE
        if not archive.is_file(): raise FileNotFoundError(f"MNIST archive {archive} not found (set RESTORELAB_ARCHIVE to its folder)")
        tmp = Path(tempfile.mkdtemp(dir=dest.parent))
        with tarfile.open(archive) as tar: tar.extractall(tmp, filter='data')
        (tmp/'mnist_png').rename(dest)
        tmp.rmdir()
    return dest, f'{ARCHIVE} extracted with tarfile into bench/.data'


def uncached_setups(path, names, threads):
    "Time decoding all 70k PNGs from scratch, once: the bare loop's decode (which refreshes its cache) and restorelab's DataBunch with an empty cache."
    out = []
    if 'bare' in names:
        log('uncached setup: bare (decode 70,000 PNGs)')
        out.append(run_one('bare-decode', sys.executable, '_bare.py', ['--path', path, '--decode-only', '--threads', threads]))
    if 'restorelab' in names:
        log('uncached setup: restorelab (DataBunch with an empty image cache)')
        from restorelab.data.external import data_path
        with tempfile.TemporaryDirectory() as home:
            # a fresh home whose data/ is the extracted dataset: no re-extraction, but no decoded-image cache either
            os.symlink(data_path(), Path(home)/'data')
            env = dict(os.environ, RESTORELAB_HOME=home)
            out.append(run_one('restorelab-setup', sys.executable, '_restorelab.py', ['--setup-only', '--threads', threads], env=env))
    return out




def summarize(results, names):
    "Per contestant: median epoch time (img/s derived from it, so the columns agree) and the other medians."
    summary = {}
    for name in names:
        ok = [r for r in results if r['name'] == name and 'error' not in r]
        errs = [r['error'] for r in results if r['name'] == name and 'error' in r]
        if not ok:
            summary[name] = dict(error=errs[-1] if errs else 'not run'); continue
        med = lambda k: statistics.median(r[k] for r in ok)
        summary[name] = dict(epoch_s=med('epoch_s'), img_s=ok[0]['n_train'] / med('epoch_s'), valid_s=med('valid_s'), valid_acc=med('valid_acc'),
                             setup_s=med('setup_s'), import_s=med('import_s'), peak_rss_mb=max(r['peak_rss_mb'] for r in ok),
                             runs=[r['epoch_s'] for r in ok], n_train=ok[0]['n_train'], params=ok[0]['params'],
                             failed=len(errs))
    return summary


def machine_info(results):
    cpu = next((l.split(':', 1)[1].strip() for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('model name')), platform.processor())
    first = lambda k: next((r[k] for r in results if k in r), None)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(), torch=first('torch'), threads=first('threads'),
                fastai=first('fastai'), commit=commit + (' (with uncommitted changes)' if dirty else ''))


def write_report(out, args, summary, results, setups, data_src, info, loads, started):
    bare = summary.get('bare', {}).get('epoch_s')
    L = ['# MNIST: one training epoch of the lesson ResNet-ish, three ways', '',
         f'Generated by `bench/mnist_epoch.py` on {started} UTC. Each number is the median of {args.rounds} interleaved round(s);',
         'every run is a fresh process. Time = one training epoch (60,000 images, 468 batches of 128, the partial batch dropped as',
         "fastai's train loader does), including the data pipeline; the validation pass (10,000 images) is timed separately.",
         '', '| contestant | epoch s | img/s | time ÷ bare | valid s | valid acc | setup s | import s | peak RSS MiB | epoch s, every run |',
         '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    for name in CONTESTANTS:
        s = summary.get(name)
        if s is None: continue
        if 'error' in s:
            L.append(f"| {name} | {s['error']} | | | | | | | | |"); continue
        ratio = f"{s['epoch_s']/bare:.2f}×" if bare else '–'
        runs = ', '.join(f'{x:.1f}' for x in s['runs']) + (f" ({s['failed']} failed)" if s['failed'] else '')
        L.append(f"| {name} | {fmt(s['epoch_s'])} | {fmt(s['img_s'], 0)} | {ratio} | {fmt(s['valid_s'])} | {fmt(s['valid_acc'], 4)} | "
                 f"{fmt(s['setup_s'])} | {fmt(s['import_s'])} | {fmt(s['peak_rss_mb'], 0)} | {runs} |")
    L += ['', 'Goal (issue): restorelab ≤ 1.05× the bare loop.', '']
    if setups:
        L += ['Setup from scratch (decoding all 70,000 PNGs, no cache), measured once per run:', '',
              '| what | seconds |', '| --- | ---: |']
        for r in setups:
            L.append(f"| {r['name']} | {r['error'] if 'error' in r else fmt(r['setup_s'])} |")
        L += ['', "The `setup s` column above is the cached setup of each round: bare loads its decoded tensors from bench/.data,",
              "restorelab builds its DataBunch (its decoded-image cache in `$RESTORELAB_HOME/cache` is warm after the first run), fastai",
              "builds its DataLoaders (it decodes every PNG again in each epoch, so its decoding is inside the epoch time).", '']
    L += ['## What each contestant does', '',
          '- Model (all three): per stage conv_layer(ni,nf,stride=2) + res_block(nf) for 1→8→16→32→16, then conv_layer(16,10,stride=2),',
          '  Flatten; conv_layer = 3×3 conv (no bias) → BatchNorm → ReLU, res block = x + conv2(conv1(x)) with the second BN zero-initialised',
          "  (fastai's BatchZero). bare and fastai use the plain-torch copy in `bench/_common.py`; restorelab uses its own `conv_layer`/`res_block`.",
          '- Schedule: one cycle, max lr 0.05, pct_start 0.3, start max/25, end max/25e4 (fastai v1 defaults), cosine both ways, beta1',
          '  0.95→0.85→0.95, Adam beta2 0.99, decoupled weight decay 1e-2, batch size 128, cross-entropy.',
          '- Augmentation (train only): zero-pad 3 pixels each side, random 28×28 crop per image; inputs normalised with the MNIST mean/std.',
          '- **bare**: PNGs decoded once into a uint8 tensor (cached in bench/.data); each batch is indexed from it, padded and cropped',
          '  with one `unfold`-gather on uint8, then converted to float and normalised; `torch.optim.AdamW` + `OneCycleLR`.',
          "- **restorelab**: the lesson's code verbatim: `ImageList.from_folder(path, convert_mode='L')` → `split_by_folder` →",
          "  `label_from_folder` → `transform(([*rand_pad(3, 28, mode='zeros')], []))` → `databunch(bs=128).normalize()`, then",
          '  `Learner(...).fit_one_cycle(1, max_lr=0.05)` with a timing callback.',
          "- **fastai 2.8.12**: `DataBlock(ImageBlock(cls=PILImageBW), CategoryBlock, GrandparentSplitter('training','testing'), parent_label,",
          "  item_tfms=[CropPad(34, pad_mode='zeros'), RandomCrop(28)], batch_tfms=Normalize.from_stats(0.1307, 0.3081))`, num_workers=0,",
          '  `Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy).fit_one_cycle(1, 0.05, pct_start=0.3, div_final=25e4)`',
          '  with a timing callback (progress bar off). CropPad+RandomCrop is the closest v2 match to v1 `rand_pad`: pad to 34 with zeros,',
          '  random crop on train, centre crop (= the original) on valid; both run per item on PIL images, as fastai does.', '',
          '## Machine', '',
          f"- CPU: {info['cpu']}, {info['cores']} cores; torch {info['torch']} with {info['threads']} threads; Python {info['python']};"
          f" fastai {info['fastai'] or '–'} (own venv)",
          f"- load average (1 min) at start {loads[0]:.2f}, at end {loads[1]:.2f} (other processes on the machine slow every contestant)",
          f"- data: {data_src}", f"- commit: {info['commit']}", f"- command: `{args.cmdline}`", '',
          '## Every run', '', '| round | contestant | epoch s | img/s | valid s | valid acc | setup s | wall s | load before |',
          '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in results:
        if 'error' in r:
            L.append(f"| {r['round']} | {r['name']} | failed: {r['error']} | | | | | {fmt(r['wall_s'], 1)} | |"); continue
        L.append(f"| {r['round']} | {r['name']} | {fmt(r['epoch_s'])} | {fmt(r['img_s'], 0)} | {fmt(r['valid_s'])} | {fmt(r['valid_acc'], 4)} | "
                 f"{fmt(r['setup_s'])} | {fmt(r['wall_s'], 1)} | {fmt(r.get('load_before'))} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text('\n'.join(L) + '\n')
    return '\n'.join(L)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--rounds', type=int, default=2, help='rounds; each runs every contestant once, interleaved (default 2)')
    p.add_argument('--only', default=','.join(CONTESTANTS), help='comma-separated contestants (default: all three)')
    p.add_argument('--threads', type=int, default=0, help='torch threads in every contestant (0: torch default)')
    p.add_argument('--skip-uncached', action='store_true', help='skip the one-off from-scratch decode timings')
    p.add_argument('--timeout', type=int, default=1800, help='seconds allowed per contestant run')
    p.add_argument('--out', type=Path, default=BENCH/'results'/'mnist_epoch.md')
    args = p.parse_args()
    args.cmdline = shlex.join([os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable,
                               os.path.relpath(__file__, REPO), *sys.argv[1:]])
    names = [n.strip() for n in args.only.split(',') if n.strip()]
    bad = [n for n in names if n not in CONTESTANTS]
    if bad: p.error(f'--only: unknown contestant(s) {bad}; choose from {list(CONTESTANTS)}')
    started = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M')
    loads = [os.getloadavg()[0]]

    if 'RESTORELAB_ARCHIVE' not in os.environ and SHARED_DATA.is_dir():
        os.environ['RESTORELAB_ARCHIVE'] = str(SHARED_DATA)   # offline: untar_data finds shared/data's archive (subprocesses inherit it)
    path, data_src = mnist_path()
    log(f'MNIST at {path} ({data_src})')

    runnable, summary = [], {}
    for name in names:
        if name == 'restorelab' and not has_module('restorelab.all'):
            summary[name] = dict(error='pending: `restorelab.all` is not importable yet')
        elif name == 'fastai' and not FASTAI_PY.exists():
            summary[name] = dict(error='not run: no bench/.venv-fastai (run `bash bench/setup_fastai_venv.sh`)')
        else: runnable.append(name)

    setups = [] if args.skip_uncached else uncached_setups(path, runnable, args.threads)
    scripts = dict(bare=(sys.executable, '_bare.py'), restorelab=(sys.executable, '_restorelab.py'), fastai=(FASTAI_PY, '_fastai.py'))
    results = []
    for rnd in range(args.rounds):
        for name in runnable:
            log(f'round {rnd + 1}/{args.rounds}: {name}')
            python, script = scripts[name]
            r = run_one(name, python, script, ['--path', path, '--seed', rnd, '--threads', args.threads], timeout=args.timeout)
            r['round'] = rnd + 1
            if 'error' not in r: log(f"  epoch {r['epoch_s']:.2f} s, {r['img_s']:.0f} img/s, valid acc {r['valid_acc']:.4f}")
            results.append(r)
    loads.append(os.getloadavg()[0])
    summary.update(summarize(results, runnable))
    info = machine_info(results)
    print(write_report(args.out, args, summary, results, setups, data_src, info, loads, started))
    log(f'wrote {os.path.relpath(args.out, REPO)}')


if __name__ == '__main__': main()
