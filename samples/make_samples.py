"""Build the small datasets in this folder from the full archives (the ones `RESTORELAB_ARCHIVE` points at).

    python samples/make_samples.py /path/to/archives      # writes samples/*.tgz and prints their sha256

Each sample keeps the layout of its full dataset, so the same lesson code reads both. The archives are reproducible:
sorted names, fixed mtime, uid/gid 0, gzip without a timestamp. `URLs.*_TINY` in restorelab.data.external holds their
hashes: update them when a sample changes.
"""
import gzip, hashlib, io, sys, tarfile, tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent


def resize_short(im: Image.Image, short: int, resample=Image.LANCZOS) -> Image.Image:
    "`im` with its short side `short` (never enlarged)."
    w, h = im.size
    ratio = short / min(w, h)
    if ratio >= 1: return im.copy()
    return im.resize((round(w * ratio), round(h * ratio)), resample)


def write_tgz(src: Path, top: str, dest: Path):
    "Pack `src/top` into `dest` reproducibly."
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for p in sorted([src/top, *(src/top).rglob('*')]):
            info = tar.gettarinfo(p, arcname=str(p.relative_to(src)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, '', ''
            info.mode = 0o755 if p.is_dir() else 0o644
            if p.is_file():
                with open(p, 'rb') as f: tar.addfile(info, f)
            else: tar.addfile(info)
    with open(dest, 'wb') as f, gzip.GzipFile(fileobj=f, mode='wb', mtime=0, filename='') as gz: gz.write(buf.getvalue())
    print(f'{dest.name}: {dest.stat().st_size:,} bytes, sha256 {hashlib.sha256(dest.read_bytes()).hexdigest()}')


def extract(archives: Path, name: str, dest: Path) -> Path:
    with tarfile.open(archives/name) as tar: tar.extractall(dest, filter='data')
    return dest


def pets(full: Path, out: Path):
    "40 photos: the first of each of the 37 breeds, then the second of the first three; short side 256."
    files = sorted((full/'oxford-iiit-pet'/'images').glob('*.jpg'))
    by_breed = {}
    for f in files: by_breed.setdefault(f.stem.rsplit('_', 1)[0], []).append(f)
    chosen = [v[0] for v in by_breed.values()] + [v[1] for v in list(by_breed.values())[:3]]
    (out/'oxford-iiit-pet'/'images').mkdir(parents=True)
    for f in chosen:
        resize_short(Image.open(f).convert('RGB'), 256).save(out/'oxford-iiit-pet'/'images'/f.name, quality=90)


def camvid(full: Path, out: Path, n=dict(train=30, val=10, test=10)):
    "The first frames of each split at half size (240x180): JPEG frames, masks resampled with nearest."
    src, dst = full/'CamVid', out/'CamVid'
    for split, k in n.items():
        (dst/split).mkdir(parents=True); (dst/f'{split}annot').mkdir()
        for f in sorted((src/split).glob('*.jpg'))[:k]:
            Image.open(f).resize((240, 180), Image.LANCZOS).save(dst/split/f.name, quality=90)
            mask = src/f'{split}annot'/f'{f.stem}.png'
            Image.open(mask).resize((240, 180), Image.NEAREST).save(dst/f'{split}annot'/mask.name)
    for name in ('codes.txt', 'colors.csv'): (dst/name).write_bytes((src/name).read_bytes())


def lsun(full: Path, out: Path):
    "The first 48 bedrooms, short side 64."
    (out/'bedroom').mkdir(parents=True)
    for f in sorted((full/'bedroom').glob('*.jpg'))[:48]:
        resize_short(Image.open(f).convert('RGB'), 64).save(out/'bedroom'/f.name, quality=90)


def style(full: Path, out: Path):
    "The style image at 320x200."
    (out/'style').mkdir(parents=True)
    Image.open(full/'style'/'starry_night.jpg').resize((320, 200), Image.LANCZOS).save(out/'style'/'starry_night.jpg',
                                                                                      quality=90)


SAMPLES = [  # (full archive, sample archive, top folder, builder)
    ('pets_small.tgz', 'pets_tiny.tgz', 'oxford-iiit-pet', pets),
    ('camvid_small.tgz', 'camvid_tiny.tgz', 'CamVid', camvid),
    ('lsun_bedroom_sample.tgz', 'lsun_tiny.tgz', 'bedroom', lsun),
    ('style_images.tgz', 'style_tiny.tgz', 'style', style),
]

if __name__ == '__main__':
    archives = Path(sys.argv[1])
    for full_name, name, top, build in SAMPLES:
        with tempfile.TemporaryDirectory() as tmp:
            full, out = extract(archives, full_name, Path(tmp)/'full'), Path(tmp)/'out'
            build(full, out)
            write_tgz(out, top, HERE/name)
