"""Run a lesson's full tier (every cell, `#| slow` ones included) and keep its outputs, the way the committed lessons were made.

    RESTORELAB_ARCHIVE=/path/to/archives python nbs/lessons/_record.py nbs/lessons/lesson7-resnet-mnist.ipynb [--out DIR]

The notebook is executed with nbclient in its own folder (as `nbdev_test --flags slow` would run it), printing a line
as each code cell finishes, then its pictures are shrunk so that a reader gets the tables and figures at a modest size:
a PNG output over `--max-kb` becomes a JPEG at most `--max-width` pixels wide. The result replaces the notebook (or goes
to `--out`); run `nbdev_clean` afterwards. When a cell fails, the notebook as far as it ran (the failing cell's error
included) is written beside the destination as `NAME.failed.ipynb`, the notebook itself is left alone, and the exit
status is 1: an hour-long run that stops at its last cell still shows what it computed.
"""
import argparse, base64, io, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from PIL import Image


def shrink_images(nb, max_kb: int = 120, max_width: int = 900, quality: int = 80) -> int:
    "Re-encode the large PNG outputs of `nb` as smaller JPEGs; the number of bytes saved."
    saved = 0
    for cell in nb.cells:
        for out in cell.get('outputs', []):
            data = out.get('data', {})
            png = data.get('image/png')
            if png is None or len(png) * 3 // 4 <= max_kb * 1024: continue
            im = Image.open(io.BytesIO(base64.b64decode(png))).convert('RGB')
            if im.width > max_width: im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, 'JPEG', quality=quality, optimize=True)
            jpeg = base64.b64encode(buf.getvalue()).decode()
            saved += len(png) - len(jpeg)
            del data['image/png']
            data['image/jpeg'] = jpeg
            out.get('metadata', {}).pop('image/png', None)
    return saved


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('notebook', type=Path)
    p.add_argument('--out', type=Path, help='folder for the executed notebook (default: replace the notebook)')
    p.add_argument('--max-kb', type=int, default=120)
    p.add_argument('--max-width', type=int, default=900)
    args = p.parse_args()
    nb_path = args.notebook.resolve()
    nb = nbformat.read(nb_path, as_version=4)
    n_code, start = sum(c.cell_type == 'code' for c in nb.cells), time.perf_counter()

    def progress(cell, cell_index, **kwargs):
        print(f'{time.strftime("%H:%M:%S")} cell {cell_index} done ({cell.get("execution_count")}/{n_code} code cells, '
              f'{(time.perf_counter() - start) / 60:.1f} min so far)', flush=True)

    client = NotebookClient(nb, timeout=None, resources={'metadata': {'path': str(nb_path.parent)}},
                            on_cell_executed=progress)
    failed = None
    try: client.execute()
    except CellExecutionError as e: failed = e
    saved = shrink_images(nb, args.max_kb, args.max_width)
    dest = (args.out/nb_path.name) if args.out else nb_path
    if failed is not None: dest = dest.with_suffix('.failed.ipynb')
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    print(f'{dest}: {dest.stat().st_size / 2**20:.2f} MB ({saved / 2**20:.2f} MB saved on pictures)')
    if failed is not None:
        print(f'a cell failed after {(time.perf_counter() - start) / 60:.1f} min; the run so far is in {dest}:\n{failed}',
              file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
