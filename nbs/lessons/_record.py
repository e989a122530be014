"""Run a lesson's full tier (every cell, `#| slow` ones included) and keep its outputs, the way the committed lessons were made.

    RESTORELAB_ARCHIVE=/path/to/archives python nbs/lessons/_record.py nbs/lessons/lesson7-resnet-mnist.ipynb [--out DIR]

The notebook is executed with nbconvert in its own folder (as `nbdev_test --flags slow` would run it), then its pictures
are shrunk so that a reader gets the tables and figures at a modest size: a PNG output over `--max-kb` becomes a JPEG
at most `--max-width` pixels wide. The result replaces the notebook (or goes to `--out`); run `nbdev_clean` afterwards.
"""
import argparse, base64, io, subprocess, sys, tempfile
from pathlib import Path

import nbformat
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
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, '-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute',
                        '--ExecutePreprocessor.timeout=-1', str(nb_path), '--output-dir', tmp], check=True,
                       cwd=nb_path.parent)
        nb = nbformat.read(Path(tmp)/nb_path.name, as_version=4)
    saved = shrink_images(nb, args.max_kb, args.max_width)
    dest = (args.out/nb_path.name) if args.out else nb_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    print(f'{dest}: {dest.stat().st_size / 2**20:.2f} MB ({saved / 2**20:.2f} MB saved on pictures)')


if __name__ == '__main__':
    main()
