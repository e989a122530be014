"""MNIST epoch benchmark: one training epoch of the lesson's ResNet-ish on full MNIST, three ways, interleaved.

Contestants (each run in a fresh process, printing one JSON line):
  bare        bench/_bare.py        hand-written PyTorch loop over uint8 tensors decoded once (project venv)
  restorelab  bench/_restorelab.py  the lesson's data block chain + Learner.fit_one_cycle (project venv)
  fastai      bench/_fastai.py      fastai 2.8.12 DataBlock + Learner.fit_one_cycle (bench/.venv-fastai, see setup_fastai_venv.sh)

Run from the repository root with the project venv:
    .venv/bin/python bench/mnist_epoch.py [--rounds 2] [--only bare,fastai]
Writes bench/results/mnist_epoch.md (medians, ratios to bare, every run, machine info). A benchmark: it never asserts a time.
"""
import importlib.util, os, sys, tarfile, tempfile
from pathlib import Path

from _harness import (BENCH, FASTAI_PY, SHARED_DATA, add_process_options, every_run, fmt, log, machine_info, machine_section,
                      not_runnable, only, option_parser, parse_options, run_one, run_rounds, started, summarize, summary_rows,
                      table, times, use_shared_archives, write_report)

CONTESTANTS = ('bare', 'restorelab', 'fastai')
SCRIPTS = dict(bare=(sys.executable, '_bare.py'), restorelab=(sys.executable, '_restorelab.py'), fastai=(FASTAI_PY, '_fastai.py'))
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


def contestants_table(summary):
    "The medians of each contestant, its epoch time relative to bare's, every run's epoch time."
    header = ['contestant', 'epoch s', 'img/s', 'time ÷ bare', 'valid s', 'valid acc', 'setup s', 'import s', 'peak RSS MiB',
              'epoch s, every run']
    cells = lambda name, s: [name, fmt(s['epoch_s']), fmt(s['img_s'], 0), times(s['vs_bare']), fmt(s['valid_s']),
                             fmt(s['valid_acc'], 4), fmt(s['setup_s']), fmt(s['import_s']), fmt(s['peak_rss_mb'], 0), every_run(s, 1)]
    return table(header, 'lrrrrrrrrl', summary_rows(CONTESTANTS, summary, cells))


def setups_blocks(setups):
    "The one-off from-scratch setup timings, and how they differ from the table's cached `setup s`."
    if not setups: return []
    return [['Setup from scratch (decoding all 70,000 PNGs, no cache), measured once per run:'],
            table(['what', 'seconds'], 'lr', [[r['name'], r['error'] if 'error' in r else fmt(r['setup_s'])] for r in setups]),
            ["The `setup s` column above is the cached setup of each round: bare loads its decoded tensors from bench/.data,",
             "restorelab builds its DataBunch (its decoded-image cache in `$RESTORELAB_HOME/cache` is warm after the first run), fastai",
             "builds its DataLoaders (it decodes every PNG again in each epoch, so its decoding is inside the epoch time)."]]


def runs_table(results):
    "Every run, failed ones included, with the load average before it."
    header = ['round', 'contestant', 'epoch s', 'img/s', 'valid s', 'valid acc', 'setup s', 'wall s', 'load before']
    def cells(r):
        if 'error' in r: return [r['round'], r['name'], f"failed: {r['error']}", None, None, None, None, fmt(r['wall_s'], 1), None]
        return [r['round'], r['name'], fmt(r['epoch_s']), fmt(r['img_s'], 0), fmt(r['valid_s']), fmt(r['valid_acc'], 4),
                fmt(r['setup_s']), fmt(r['wall_s'], 1), fmt(r.get('load_before'))]
    return table(header, 'rlrrrrrrr', map(cells, results))


# the report's '## What each contestant does' section
WHAT_EACH_DOES = [
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
    '  random crop on train, centre crop (= the original) on valid; both run per item on PIL images, as fastai does.',
]


def report(args, summary, results, setups, data_src, info):
    "Write bench/results/mnist_epoch.md (or --out) and print it."
    intro = [f"Generated by `bench/mnist_epoch.py` on {info['started']} UTC. Each number is the median of {args.rounds} interleaved round(s);",
             'every run is a fresh process. Time = one training epoch (60,000 images, 468 batches of 128, the partial batch dropped as',
             "fastai's train loader does), including the data pipeline; the validation pass (10,000 images) is timed separately."]
    cpu = (f"- CPU: {info['cpu']}, {info['cores']} cores; torch {info['torch']} with {info['threads']} threads; Python {info['python']};"
           f" fastai {info['fastai'] or '–'} (own venv)")
    write_report(args.out, 'MNIST: one training epoch of the lesson ResNet-ish, three ways',
                 [intro, contestants_table(summary), ['Goal (issue): restorelab ≤ 1.05× the bare loop.'], *setups_blocks(setups),
                  ['## What each contestant does'], WHAT_EACH_DOES,
                  *machine_section(info, [cpu], after_load=[f'- data: {data_src}']),
                  ['## Every run'], runs_table(results)])


def main():
    p = option_parser(__doc__, rounds=2)
    p.add_argument('--only', default=','.join(CONTESTANTS), help='comma-separated contestants (default: all three)')
    add_process_options(p)
    p.add_argument('--skip-uncached', action='store_true', help='skip the one-off from-scratch decode timings')
    args = parse_options(p, 'mnist_epoch.md')
    names = only(p, args.only, CONTESTANTS)
    start = started()

    use_shared_archives()
    path, data_src = mnist_path()
    log(f'MNIST at {path} ({data_src})')

    runnable, summary = [], {}
    for name in names:
        why = ('pending: `restorelab.all` is not importable yet' if name == 'restorelab' and not has_module('restorelab.all')
               else not_runnable(SCRIPTS[name][0]))
        if why: summary[name] = dict(error=why)
        else: runnable.append(name)

    setups = [] if args.skip_uncached else uncached_setups(path, runnable, args.threads)
    run = lambda name, rnd: run_one(name, *SCRIPTS[name], ['--path', path, '--seed', rnd, '--threads', args.threads], timeout=args.timeout)
    describe = lambda r: f"  epoch {r['epoch_s']:.2f} s, {r['img_s']:.0f} img/s, valid acc {r['valid_acc']:.4f}"
    results = run_rounds(args.rounds, runnable, run, describe)
    info = machine_info(results, start)
    summary.update(summarize(results, runnable, 'epoch_s', medians=('valid_s', 'valid_acc', 'setup_s', 'import_s'),
                             firsts=('n_train', 'params'), images='n_train', baseline='bare', ratios=dict(vs_bare='epoch_s')))
    report(args, summary, results, setups, data_src, info)


if __name__ == '__main__': main()
