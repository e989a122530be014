"""Build restorelab's documentation: one HTML page per notebook, and an index, from the notebooks as committed.

    python docs/build.py              # writes _docs/index.html, _docs/<module notebook>.html, _docs/lessons/<lesson>.html
    python docs/build.py --readme     # also rewrites README.md from nbs/index.ipynb (its source)

nbdev's own `nbdev_docs` needs Quarto, which cannot be installed offline, so the pages are made with nbconvert's HTML
exporter, the notebooks' stored outputs included (tables, pictures, `show_doc` entries). What a reader should not see
goes, as in nbdev's pages: `#| hide` cells, `#| default_exp` cells and the `#|` directive lines themselves.
"""
import argparse, html, re, sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
TEMPLATE = 'lab'


def notebooks(nbs: Path = NBS) -> list:
    "The notebooks to publish: the module notebooks (NN_name.ipynb) and the lessons, in order."
    return sorted(nbs.glob('[0-9][0-9]_*.ipynb')) + sorted((nbs/'lessons').glob('*.ipynb'))


def _directives(src: str) -> set:
    return {m.group(1) for m in re.finditer(r'^#\|\s*([\w-]+)', src, re.M)}


def for_readers(nb):
    "A copy of `nb` without hidden and `default_exp` cells, and without the `#|` lines of the others."
    nb = nbformat.from_dict(nb)
    cells = []
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == 'code' and _directives(src) & {'hide', 'default_exp'}: continue
        if cell.cell_type == 'code': cell.source = re.sub(r'^#\|.*\n?', '', src, flags=re.M)
        cells.append(cell)
    nb.cells = cells
    return nb


def title_and_summary(nb) -> tuple:
    "The first `# heading` of the notebook and its `> summary` line(s)."
    for cell in nb.cells:
        if cell.cell_type != 'markdown': continue
        m = re.search(r'^#\s+(.+)$', cell.source, re.M)
        if m:
            summary = ' '.join(l[1:].strip() for l in cell.source.splitlines() if l.startswith('>'))
            return m.group(1).strip(), summary
    return None, ''


def page_name(nb_path: Path, nbs: Path = NBS) -> Path:
    "Where the page of `nb_path` goes, relative to the output folder."
    return nb_path.relative_to(nbs).with_suffix('.html')


def build_page(nb_path: Path, out: Path, nbs: Path = NBS, exporter=None) -> Path:
    "Convert one notebook into its page under `out`; returns the page's path."
    exporter = exporter or HTMLExporter(template_name=TEMPLATE)
    nb = for_readers(nbformat.read(nb_path, as_version=4))
    body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title_and_summary(nb)[0] or nb_path.stem}})
    dest = out/page_name(nb_path, nbs)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(body, encoding='utf-8')
    return dest


def markdown_of(nb_path: Path) -> str:
    "The markdown cells of a notebook, joined: how nbs/index.ipynb becomes README.md."
    nb = nbformat.read(nb_path, as_version=4)
    return '\n\n'.join(c.source.strip() for c in nb.cells if c.cell_type == 'markdown') + '\n'


def build_index(pages: list, out: Path, nbs: Path = NBS, exporter=None) -> Path:
    "index.html: nbs/index.ipynb (what the README says), then a list of every page with its summary."
    exporter = exporter or HTMLExporter(template_name=TEMPLATE)
    nb = nbformat.read(nbs/'index.ipynb', as_version=4)
    rows = {'Modules': [], 'Lessons': []}
    for nb_path in pages:
        title, summary = title_and_summary(nbformat.read(nb_path, as_version=4))
        kind = 'Lessons' if nb_path.parent.name == 'lessons' else 'Modules'
        rows[kind].append(f'- [{title or nb_path.stem}]({page_name(nb_path, nbs).as_posix()})'
                          + (f': {summary}' if summary else ''))
    listing = '\n\n'.join(f'## {kind}\n\n' + '\n'.join(items) for kind, items in rows.items() if items)
    nb.cells.append(nbformat.v4.new_markdown_cell('# The pages\n\n' + listing))
    body, _ = exporter.from_notebook_node(for_readers(nb), resources={'metadata': {'name': 'restorelab'}})
    dest = out/'index.html'
    dest.write_text(body, encoding='utf-8')
    return dest


def build(out: Path = ROOT/'_docs', nbs: Path = NBS, only=None) -> list:
    "Build the pages of `only` (default: every notebook) and the index into `out`; the paths written."
    exporter = HTMLExporter(template_name=TEMPLATE)
    pages = notebooks(nbs) if only is None else [Path(p) for p in only]
    written = [build_page(p, out, nbs, exporter) for p in pages]
    written.append(build_index(pages, out, nbs, exporter))
    return written


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=ROOT/'_docs')
    p.add_argument('--readme', action='store_true', help='also write README.md from nbs/index.ipynb')
    args = p.parse_args()
    written = build(args.out)
    print(f'{len(written)} pages in {args.out}/ (open {args.out/"index.html"})')
    if args.readme:
        (ROOT/'README.md').write_text(markdown_of(NBS/'index.ipynb'), encoding='utf-8')
        print('README.md written from nbs/index.ipynb')


if __name__ == '__main__':
    sys.exit(main())
