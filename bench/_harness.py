"""What every benchmark orchestrator here shares: run one contestant in a fresh process and read its JSON line, run the
rounds, summarise the runs, describe the machine, and write the markdown report. An orchestrator keeps what is its own:
its contestants, its columns, its goals and its notes.

Needs only the standard library (Pillow's version is read when it is there), so importing it costs nothing."""
import argparse, datetime, json, os, platform, shlex, statistics, subprocess, sys, time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SHARED_DATA = REPO.parent/'shared'/'data'        # the offline archives, beside the checkout
FASTAI_PY = BENCH/'.venv-fastai'/'bin'/'python'  # fastai 2.8.12 needs a venv of its own: bench/setup_fastai_venv.sh
CPU_FLAGS = ('avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16')   # what bf16 / channels_last speed depends on


def log(*args): print(*args, file=sys.stderr, flush=True)


def fmt(x, nd=2): return '–' if x is None else f'{x:,.{nd}f}'


def times(ratio): return '–' if not ratio else fmt(ratio) + '×'


# ---- options ----
def option_parser(description, rounds, rounds_help='rounds; each runs every contestant once, interleaved'):
    "An orchestrator's option parser, with the option all of them take first: --rounds (default `rounds`)."
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--rounds', type=int, default=rounds, help=f'{rounds_help} (default {rounds})')
    return p


def add_process_options(p):
    "--threads and --timeout, for orchestrators that run each contestant in a process of its own."
    p.add_argument('--threads', type=int, default=0, help='torch threads in every contestant (0: torch default)')
    p.add_argument('--timeout', type=int, default=1800, help='seconds allowed per contestant run')


def parse_options(p, report):
    "Add the option all orchestrators take last, --out (default bench/results/`report`), and read the command line."
    p.add_argument('--out', type=Path, default=BENCH/'results'/report)
    return p.parse_args()


def only(parser, text, contestants):
    "The contestants named in `--only` TEXT (comma-separated), each checked against `contestants`."
    names = [n.strip() for n in text.split(',') if n.strip()]
    bad = [n for n in names if n not in contestants]
    if bad: parser.error(f'--only: unknown contestant(s) {bad}; choose from {list(contestants)}')
    return names


# ---- running ----
def use_shared_archives():
    "Point RESTORELAB_ARCHIVE at shared/data when it is unset: untar_data then works offline (contestant processes inherit it)."
    if 'RESTORELAB_ARCHIVE' not in os.environ and SHARED_DATA.is_dir(): os.environ['RESTORELAB_ARCHIVE'] = str(SHARED_DATA)


def not_runnable(python):
    "Why a contestant run by `python` cannot run (the fastai venv is not set up), or None."
    if Path(python) == FASTAI_PY and not FASTAI_PY.exists():
        return 'not run: no bench/.venv-fastai (run `bash bench/setup_fastai_venv.sh`)'


def started():
    "The start of a benchmark as its report gives it: the UTC time (to the minute) and the 1-minute load average."
    return dict(time=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M'), load=os.getloadavg()[0])


def run_one(name, python, script, args, env=None, timeout=1800, cwd=REPO):
    "Run `python BENCH/script args` in a fresh process; its result dict (the last JSON line), or {'name', 'error'}."
    cmd = [str(python), str(BENCH/script), *map(str, args)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    try: proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
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
    if res.get('name') != name: raise RuntimeError(f'{script} {args} reported {res.get("name")!r}, expected {name!r}')
    res.update(wall_s=round(wall, 1), load_before=round(load, 2))
    return res


def run_rounds(rounds, names, run, describe):
    """Every contestant once per round, interleaved round by round so that drift in the machine's load hits them all alike.
    `run(name, rnd)` (rnd from 0) runs one and returns its result (`run_one`'s dict); `describe(result)` is the line logged
    for a success. Every result, each with its `round` (from 1)."""
    results = []
    for rnd in range(rounds):
        for name in names:
            log(f'round {rnd + 1}/{rounds}: {name}')
            r = run(name, rnd)
            r['round'] = rnd + 1
            if 'error' not in r: log(describe(r))
            results.append(r)
    return results


# ---- summarising ----
def _ratio(x, base): return x / base if x is not None and base is not None and base > 0 else None


def _summary(ok, key, medians, firsts, images):
    "One contestant's successful runs `ok` summarised (see `summarize`)."
    med = lambda k: statistics.median(r[k] for r in ok)
    s = {k: med(k) for k in (key, *medians)}
    s.update({k: ok[0].get(k) for k in firsts}, peak_rss_mb=max(r['peak_rss_mb'] for r in ok), runs=[r[key] for r in ok])
    # img/s from the median time rather than the median of the runs' img/s, so that the two columns agree
    if images: s['img_s'] = ok[0][images] / s[key]
    return s


def summarize(results, names, key, medians=(), firsts=(), images=None, baseline=None, ratios=None, speedups=None):
    """Per contestant in `names`, over its successful runs: the median of `key` (its time) and of each of `medians`, the
    largest `peak_rss_mb`, the first run's value of each of `firsts`, `runs` (every run's `key`), `failed` (how many runs
    failed) and, with `images` (the key of the images per run), `img_s`. A contestant with no successful run gets its last
    `error` instead ('not run' when it has none).
    Against the contestant `baseline`: `ratios` {field: k} sets field = the contestant's k ÷ the baseline's, `speedups`
    {field: k} the baseline's k ÷ the contestant's (None when the baseline has no such median)."""
    summary = {}
    for name in names:
        ok = [r for r in results if r['name'] == name and 'error' not in r]
        errs = [r['error'] for r in results if r['name'] == name and 'error' in r]
        if ok: summary[name] = dict(_summary(ok, key, medians, firsts, images), failed=len(errs))
        else: summary[name] = dict(error=(errs or ['not run'])[-1])
    base = summary.get(baseline, {})
    for s in summary.values():
        if 'error' in s: continue
        s.update({field: _ratio(s[k], base.get(k)) for field, k in (ratios or {}).items()})
        s.update({field: _ratio(base.get(k), s[k]) for field, k in (speedups or {}).items()})
    return summary


# ---- the machine ----
def _cpu():
    "The CPU model and its flags, from /proc/cpuinfo."
    lines = Path('/proc/cpuinfo').read_text().splitlines()
    model = next((l.split(':', 1)[1].strip() for l in lines if l.startswith('model name')), platform.processor())
    return model, set(next((l.split(':', 1)[1].split() for l in lines if l.startswith('flags')), []))


def _threads_per_core():
    "Hardware threads per core (2 hardware threads of one core give far less than 2 cores), or None where unknown."
    try:
        siblings = Path('/sys/devices/system/cpu/cpu0/topology/thread_siblings_list').read_text().strip()
        return len([c for part in siblings.split(',') for c in range(int(part.split('-')[0]), int(part.split('-')[-1]) + 1)])
    except (OSError, ValueError): return None


def _usable_cpus():
    "The CPUs this process may use (restorelab.core.num_cpus's rule, which `parallel` follows)."
    try: return len(os.sched_getaffinity(0))
    except AttributeError: return os.cpu_count() or 1


def _pillow():
    "Pillow's version, or None (only crappify_parallel.py reports it)."
    try: import PIL
    except ImportError: return None
    return PIL.__version__


def _commit():
    "HEAD's short hash, flagged when tracked files differ from it (then the numbers are not quite that commit's)."
    git = lambda *a: subprocess.run(['git', *a], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = git('status', '--porcelain', '--untracked-files=no')
    return git('rev-parse', '--short', 'HEAD') + (' (with uncommitted changes)' if dirty else '')


def command_line():
    "How this orchestrator was started (paths relative to the repository), for the report: how to run it again."
    python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    return shlex.join([python, os.path.relpath(os.path.abspath(sys.argv[0]), REPO), *sys.argv[1:]])


def machine_info(results=(), start=None):
    """What a report says of the machine and of the benchmark run: the CPU (model, bf16-relevant flags), logical CPUs, the
    usable ones and hardware threads per core, memory, Python, Pillow; as the contestants reported them, torch, its threads
    and CPU capability, fastai and the model's parameters; the start time and the load average at `start` (`started()`)
    and now; the commit and the command line."""
    cpu, flags = _cpu()
    first = lambda k: next((r[k] for r in results if k in r), None)
    mem = next((l.split(':', 1)[1].strip() for l in Path('/proc/meminfo').read_text().splitlines() if l.startswith('MemTotal')), '?')
    start = start or started()
    return dict(cpu=cpu, flags=', '.join(f"{f} {'yes' if f in flags else 'no'}" for f in CPU_FLAGS), cores=os.cpu_count(),
                usable=_usable_cpus(), smt=_threads_per_core(), mem=mem, python=platform.python_version(), pillow=_pillow(),
                torch=first('torch'), threads=first('threads'), cpu_capability=first('cpu_capability'), fastai=first('fastai'),
                params=first('params'), started=start['time'], loads=(start['load'], os.getloadavg()[0]),
                commit=_commit(), command=command_line())


# ---- the report ----
def every_run(s, nd):
    "A summary's `runs`, comma-separated, and how many failed."
    return ', '.join(f'{x:.{nd}f}' for x in s['runs']) + (f" ({s['failed']} failed)" if s['failed'] else '')


def table(header, align, rows):
    """A markdown table: `header` the column titles, `align` a letter per column ('l' text, 'r' a number), `rows` lists of
    cells. None is an empty cell (`| |`), and a short row (a contestant's name and its error) is padded with empty cells."""
    line = lambda cells: '|' + '|'.join(' ' if c is None else f' {c} ' for c in cells) + '|'
    return [line(header), line('---' if a == 'l' else '---:' for a in align),
            *(line([*row, *[None] * (len(header) - len(row))]) for row in rows)]


def summary_rows(names, summary, cells):
    "Per contestant in `names` that has a summary `s`: the row `cells(name, s)`, or its name and its error."
    return [[name, s['error']] if 'error' in s else cells(name, s) for name in names if (s := summary.get(name)) is not None]


def machine_section(info, cpu_lines, after_load=(), load_note='other processes on the machine slow every contestant'):
    "The report's '## Machine' section (as blocks, see `write_report`): `cpu_lines`, the load averages, `after_load`, commit, command."
    load = f"- load average (1 min) at start {info['loads'][0]:.2f}, at end {info['loads'][1]:.2f} ({load_note})"
    return [['## Machine'], [*cpu_lines, load, *after_load, f"- commit: {info['commit']}", f"- command: `{info['command']}`"]]


def write_report(out, title, blocks):
    """Write the markdown report to `out` and print it: `# title`, then the blocks (lists of lines: paragraphs, tables,
    headings), one empty line between two; an empty block is left out."""
    text = '\n\n'.join('\n'.join(block) for block in [[f'# {title}'], *blocks] if block)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + '\n')
    print(text)
    log(f'wrote {os.path.relpath(out, REPO) if out.resolve().is_relative_to(REPO) else out}')
