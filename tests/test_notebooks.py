"""Notebook hygiene that nbdev_test cannot see.

`nbdev_test --n_workers 1` runs every notebook, one after another, in the same worker process: an environment variable
a notebook sets and leaves set reaches every notebook after it. (06_data.vision once left RESTORELAB_HOME on a temporary
folder, and every later lesson then wrote its data and checkpoints there, gigabytes per run, never removed.) And a
temporary folder a notebook makes outlives the test run unless the notebook removes it.
"""
import re
from pathlib import Path

import nbformat
import pytest

NBS = Path(__file__).resolve().parent.parent/'nbs'
NOTEBOOKS = sorted(p for p in NBS.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
SETS = re.compile(r"os\.environ\[\s*'([A-Z_]+)'\s*\]\s*=(?!=)")
RESTORES = re.compile(r"os\.environ\.pop\(|del os\.environ\[")
MAKES_TEMP = re.compile(r"^\S.*tempfile\.mkdtemp\(", re.M)   # at the top level of a cell: a folder the notebook keeps
REMOVES = re.compile(r"shutil\.rmtree\(")


def _code(path: Path) -> str:
    return '\n'.join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == 'code')


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.relative_to(NBS).as_posix())
def test_environment_is_restored(path):
    "A notebook that sets an environment variable also puts it back (pops or deletes it when it was unset before)."
    code = _code(path)
    set_vars = sorted(set(SETS.findall(code)))
    assert not set_vars or RESTORES.search(code), \
        f'{path.name} sets {", ".join(set_vars)} and never restores it: later notebooks of nbdev_test would inherit it'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.relative_to(NBS).as_posix())
def test_temporary_folders_are_removed(path):
    "A notebook that makes a temporary folder for its tests removes it (an rmtree, usually in a last hidden cell)."
    code = _code(path)
    assert not MAKES_TEMP.search(code) or REMOVES.search(code), \
        f'{path.name} makes a temporary folder (tempfile.mkdtemp) and never removes it: it would outlive every test run'


def test_the_check_sees_a_leak(tmp_path):
    "The pattern catches the leak it is for, and accepts the restore idiom the notebooks use."
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os; os.environ['RESTORELAB_HOME'] = str(tmp/'home')")]
    nbformat.write(nb, tmp_path/'leak.ipynb')
    with pytest.raises(AssertionError, match='RESTORELAB_HOME'): test_environment_is_restored(tmp_path/'leak.ipynb')
    nb.cells.append(nbformat.v4.new_code_cell("if _home is None: del os.environ['RESTORELAB_HOME']"))
    nbformat.write(nb, tmp_path/'leak.ipynb')
    test_environment_is_restored(tmp_path/'leak.ipynb')
    nb.cells = [nbformat.v4.new_code_cell("tmp = Path(tempfile.mkdtemp())")]
    nbformat.write(nb, tmp_path/'leak.ipynb')
    with pytest.raises(AssertionError, match='mkdtemp'): test_temporary_folders_are_removed(tmp_path/'leak.ipynb')
