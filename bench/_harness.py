"""What every benchmark orchestrator here shares: run one contestant in a fresh process and read its JSON line; logging
and number formatting for the reports."""
import json, os, subprocess, sys, time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def log(*args): print(*args, file=sys.stderr, flush=True)


def fmt(x, nd=2): return '–' if x is None else f'{x:,.{nd}f}'


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
