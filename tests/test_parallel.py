"`restorelab.core.parallel` outside a notebook: functions of a script's `__main__`, a dying worker, the spawn start method."
import operator, os, subprocess, sys, textwrap
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from restorelab.core import parallel, ParallelError

REPO = Path(__file__).resolve().parents[1]


def test_function_of_a_scripts_main(tmp_path):
    "A function defined in the `__main__` of a plain script reaches the forked workers (no pickling by name needed)."
    script = tmp_path/'job.py'
    script.write_text(textwrap.dedent('''
        import os
        from restorelab.core import parallel
        def job(o, i): return (o * 10 + i, os.getpid())
        if __name__ == '__main__':
            res = parallel(job, [1, 2, 3, 4], max_workers=2)
            assert [r[0] for r in res] == [10, 21, 32, 43], res
            assert os.getpid() not in {r[1] for r in res}
            offset = 100
            print(parallel(lambda o, i: o + offset, [1, 2], max_workers=2))   # a closure over a local works too
    '''))
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, 'PYTHONPATH': str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == '[101, 102]'


def _die(o, i):
    if o == 'die': os._exit(3)   # the worker process vanishes without raising
    return o


def test_a_dying_worker_is_reported():
    with pytest.raises(ParallelError, match='BrokenProcessPool') as e:
        parallel(_die, ['a', 'die', 'b'], max_workers=2, chunksize=1)
    assert isinstance(e.value.__cause__, BrokenProcessPool)


def test_results_keep_their_order_when_items_finish_out_of_order():
    import time
    res = parallel(lambda o, i: (time.sleep(0.01 * (5 - i)), (o, i))[1], 'vwxyz', max_workers=2, chunksize=1)
    assert res == [('v', 0), ('w', 1), ('x', 2), ('y', 3), ('z', 4)]


@pytest.mark.slow
def test_spawn_with_an_importable_function():
    "Without fork, a function importable from a module works (each spawned worker imports restorelab and torch: slow)."
    assert parallel(operator.mul, [3, 4, 5], max_workers=2, start_method='spawn') == [0, 4, 10]
