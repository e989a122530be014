"The documentation build (docs/build.py): a page per notebook and an index, from the committed notebooks."
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'docs'))
import build   # noqa: E402


def test_pages_for_a_module_and_a_lesson(tmp_path):
    module, lesson = build.NBS/'23_learner.ipynb', build.NBS/'lessons'/'lesson7-resnet-mnist.ipynb'
    written = build.build(tmp_path, only=[module, lesson])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == \
        ['23_learner.html', 'index.html', 'lessons/lesson7-resnet-mnist.html']
    page = (tmp_path/'23_learner.html').read_text()
    assert '<html' in page and 'fit_one_cycle' in page
    assert '#| export' not in page and 'from fastcore.test import' not in page   # directives and hidden cells go
    lesson_page = (tmp_path/'lessons'/'lesson7-resnet-mnist.html').read_text()
    assert 'ResNet' in lesson_page and 'untar_data' in lesson_page
    index = (tmp_path/'index.html').read_text()
    assert 'href="23_learner.html"' in index and 'href="lessons/lesson7-resnet-mnist.html"' in index


def test_every_notebook_is_published():
    names = {p.name for p in build.notebooks()}
    assert '00_core.ipynb' in names and 'lesson3-camvid.ipynb' in names and 'index.ipynb' not in names
    assert len(names) == len(list(build.NBS.glob('[0-9][0-9]_*.ipynb'))) + len(list((build.NBS/'lessons').glob('*.ipynb')))


def test_hidden_cells_are_left_out():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('#| default_exp x'),
                                         nbformat.v4.new_code_cell('#| hide\nsecret = 1'),
                                         nbformat.v4.new_code_cell('#| export\ndef f(): pass'),
                                         nbformat.v4.new_markdown_cell('# x\n\n> what x is')])
    shown = build.for_readers(nb)
    assert [c.source for c in shown.cells] == ['def f(): pass', '# x\n\n> what x is']
    assert build.title_and_summary(shown) == ('x', 'what x is')


def test_readme_is_the_index_notebook():
    "README.md is made from nbs/index.ipynb (`python docs/build.py --readme`): the two never drift apart."
    assert (ROOT/'README.md').read_text() == build.markdown_of(build.NBS/'index.ipynb'), \
        'README.md differs from nbs/index.ipynb: edit the notebook, then run python docs/build.py --readme'
