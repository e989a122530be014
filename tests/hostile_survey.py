"""A survey of bad inputs and faults through restorelab's public API and the `restorelab` command, with a tally.

    .venv/bin/python tests/hostile_survey.py [--out survey.md] [--only SUBSTRING]

Each case runs in a fresh interpreter (a crash in a C decoder is a result here, not the end of the survey), in a
temporary folder made for it, and is classed as:

- handled: a valid but unusual input that is processed correctly;
- clear: a bad input refused with an error that names its cause (the file, the argument) and nothing else happened;
- unclear: an error that does not name its cause, a raw exception from deep inside torch or Pillow, or a valid input
  refused;
- silent: a bad input accepted, giving a wrong result;
- lost: a user's file changed or deleted;
- crash: the process died.

This is not a test (pytest does not collect it): `tests/test_hostile_*.py` hold one test per case that once failed.
The survey is the wider net, rerun before a release; its table goes into the closing note of the work it checks.
"""
import argparse, subprocess, sys, tempfile, textwrap, time
from pathlib import Path

PRELUDE = '''
import io, os, sys, json, struct, zlib, warnings, hashlib, tarfile, errno
from pathlib import Path
import numpy as np, torch
from torch import nn
from PIL import Image as PILImage
warnings.simplefilter('ignore')
T = Path(sys.argv[1])
os.environ['RESTORELAB_HOME'] = str(T/'home')
from restorelab.all import *
from restorelab.test_utils import synth_learner, synth_dbunch, synth_segmentation
def digest(folder): return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob('*')) if p.is_file() and not p.is_symlink()}
def photos(folder, n=3, size=(20, 28), ext='png'):
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n): PILImage.fromarray(rng.integers(0, 255, (*size, 3), np.uint8)).save(folder/f'{i}.{ext}')
    return folder
def chunk(k, d): return struct.pack('>I', len(d)) + k + d + struct.pack('>I', zlib.crc32(k + d) & 0xffffffff)
def png_claiming(w, h): return b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(b'\\0' * 10)) + chunk(b'IEND', b'')
def tgz(fn, members):
    with tarfile.open(fn, 'w:gz') as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None: info.type = tarfile.DIRTYPE; t.addfile(info)
            else: info.size = len(data); t.addfile(info, io.BytesIO(data))
    return fn
def exported(folder):
    folder = Path(folder)
    for sub in ('lr', 'hr'): photos(folder/sub, 2, (16, 16))
    data = (ImageImageList.from_folder(folder/'lr').split_by_idx([0]).label_from_func(lambda x: folder/'hr'/x.name)
            .transform(([], []), size=16, tfm_y=True).databunch(bs=1))
    learn = unet_learner(data, models.resnet18, pretrained=False, loss_func=MSELossFlat(), silent=True)
    return learn, learn.export(folder/'gen.pth')
def classif(folder, n=4, size=(16, 16), **kw):
    for c in 'ab': photos(Path(folder)/c, n, size)
    return ImageList.from_folder(folder, **kw).split_by_rand_pct(0.25, seed=0).label_from_folder().transform(size=16).databunch(bs=2)
def tl(n=4): return TensorList(list(torch.randn(n, 1)))
def cli(*args):
    import subprocess
    r = subprocess.run([str(Path(sys.executable).parent/'restorelab'), *map(str, args)], capture_output=True, text=True)
    raise SystemExit(r.stderr.strip().splitlines()[-1] if r.returncode == 2 else f'exit {r.returncode}: {r.stderr[-300:]}')
'''

RUNNER = '''
try:
    result = case()
except BaseException as e:
    print('RAISED', type(e).__module__ + '.' + type(e).__name__, '::', ' '.join(str(e).split())[:1000])
else:
    print('RETURNED', result)
'''

# (id, entry point, code defining `case()`, expectation): 'error:' + substrings the message must hold (| separated),
# or 'ok': `case()` returns 'OK' when the input was handled right, 'WRONG ...' when silently wrong, 'LOST ...' when a
# user's file changed
CASES = [
    # ---- images
    ('empty file', 'open_image', "def case(): (T/'a.png').write_bytes(b''); open_image(T/'a.png')", 'error:a.png|empty'),
    ('not an image', 'open_image', "def case(): (T/'a.png').write_bytes(b'hello'); open_image(T/'a.png')", 'error:a.png'),
    ('short PNG data', 'open_image', "def case(): (T/'a.png').write_bytes(png_claiming(64, 64)); open_image(T/'a.png')", 'error:a.png'),
    ('PNG header 60000x60000', 'open_image', "def case(): (T/'a.png').write_bytes(png_claiming(60000, 60000)); open_image(T/'a.png')", 'error:a.png|too large'),
    ('decompression bomb 16000x16000', 'open_image', "def case(): PILImage.new('L', (16000, 16000)).save(T/'b.png'); open_image(T/'b.png')", 'error:b.png|max_image_pixels'),
    ('truncated JPEG', 'open_image', "def case():\n    photos(T, 1, ext='jpg'); d = (T/'0.jpg').read_bytes(); (T/'0.jpg').write_bytes(d[:len(d)//2]); open_image(T/'0.jpg')", 'error:0.jpg'),
    ('missing file', 'open_image', "def case(): open_image(T/'nope.png')", 'error:nope.png'),
    ('a folder as the file', 'open_image', "def case(): (T/'d.png').mkdir(); open_image(T/'d.png')", 'error:d.png'),
    ('invalid convert_mode', 'open_image', "def case(): photos(T, 1); open_image(T/'0.png', convert_mode='RBG')", "error:convert_mode='RBG'"),
    ('CMYK JPEG', 'open_image', "def case():\n    PILImage.new('CMYK', (8, 8), (0, 255, 0, 0)).save(T/'c.jpg'); t = open_image(T/'c.jpg').data\n    return 'OK' if t.shape == (3, 8, 8) else f'WRONG {t.shape}'", 'ok'),
    ('16-bit grey PNG', 'open_image', "def case():\n    a = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000); PILImage.fromarray(a).save(T/'g.png')\n    t = open_image(T/'g.png', convert_mode='L').data[0]\n    return 'OK' if abs(float(t.max()) - 63000 / 65535) < 0.01 else f'WRONG max {float(t.max())}'", 'ok'),
    ('palette PNG', 'open_image', "def case():\n    im = PILImage.new('P', (4, 4), 1); im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762); im.save(T/'p.png')\n    t = open_image(T/'p.png').data\n    return 'OK' if t[0].min() == 1 and t[1].max() == 0 else 'WRONG'", 'ok'),
    ('RGBA PNG', 'open_image', "def case():\n    PILImage.new('RGBA', (4, 4), (10, 20, 30, 0)).save(T/'a.png'); t = open_image(T/'a.png').data\n    return 'OK' if t.shape == (3, 4, 4) else 'WRONG'", 'ok'),
    ('1x1 image', 'open_image', "def case(): PILImage.new('RGB', (1, 1)).save(T/'a.png'); return 'OK' if open_image(T/'a.png').shape == (3, 1, 1) else 'WRONG'", 'ok'),
    ('animated GIF', 'open_image', "def case():\n    fr = [PILImage.new('RGB', (6, 6), (i * 80, 0, 0)) for i in range(3)]; fr[0].save(T/'a.gif', save_all=True, append_images=fr[1:])\n    return 'OK' if open_image(T/'a.gif').shape == (3, 6, 6) else 'WRONG'", 'ok'),
    ('unicode file name', 'open_image', "def case(): PILImage.new('RGB', (4, 4)).save(T/'ñoño 图.png'); return 'OK' if open_image(T/'ñoño 图.png').shape == (3, 4, 4) else 'WRONG'", 'ok'),
    ('float32 TIFF in [0, 1]', 'open_image', "def case():\n    PILImage.fromarray(np.full((4, 4), 0.5, np.float32), mode='F').save(T/'f.tif')\n    v = float(open_image(T/'f.tif', convert_mode='L').data.mean()); return 'OK' if abs(v - 0.5) < 0.01 else f'WRONG {v}'", 'ok'),
    ('float32 TIFF out of [0, 1]', 'open_image', "def case(): PILImage.fromarray(np.full((4, 4), 9., np.float32), mode='F').save(T/'f.tif'); open_image(T/'f.tif')", 'error:f.tif|float'),
    ('RGB colour mask', 'open_mask', "def case():\n    a = np.zeros((4, 4, 3), np.uint8); a[:2] = (200, 0, 0); PILImage.fromarray(a).save(T/'m.png'); open_mask(T/'m.png')", 'error:m.png|RGB'),
    ('palette mask', 'open_mask', "def case():\n    im = PILImage.fromarray(np.array([[0, 2], [1, 0]], np.uint8), mode='P'); im.putpalette([255] * 768); im.save(T/'m.png')\n    return 'OK' if open_mask(T/'m.png').data[0].tolist() == [[0, 2], [1, 0]] else 'WRONG'", 'ok'),
    ('16-bit mask value 300', 'open_mask', "def case(): PILImage.fromarray(np.full((4, 4), 300, np.uint16)).save(T/'m.png'); open_mask(T/'m.png')", 'error:m.png|300'),
    ('one bad file among good (skip_bad)', 'ImageList.from_folder', "def case():\n    photos(T/'d', 3); (T/'d'/'bad.png').write_bytes(png_claiming(64, 64))\n    il = ImageList.from_folder(T/'d', skip_bad=True); return 'OK' if len(il) == 3 else f'WRONG {len(il)}'", 'ok'),
    ('folder that does not exist', 'ImageList.from_folder', "def case(): ImageList.from_folder(T/'nope')", 'error:nope'),
    ('folder with no images', 'ImageList.from_folder', "def case(): (T/'e').mkdir(); (T/'e'/'a.txt').write_text('x'); ImageList.from_folder(T/'e')", 'error:no files found'),
    ('typo in a keyword', 'ImageList.from_folder', "def case(): photos(T); ImageList.from_folder(T, convert_mod='L')", 'error:convert_mod'),
    ('replaced file, same size and mtime', 'ImageList cache', "def case():\n    d = T/'d'; d.mkdir()\n    for i in range(3): PILImage.new('L', (8, 8), i).save(d/f'{i}.bmp')\n    ImageList.from_folder(d, convert_mode='L').tensors(); st = (d/'0.bmp').stat()\n    PILImage.new('L', (8, 8), 200).save(d/'0.bmp'); os.utime(d/'0.bmp', ns=(st.st_atime_ns, st.st_mtime_ns))\n    v = int(ImageList.from_folder(d, convert_mode='L').tensors()[0, 0, 0, 0]); return 'OK' if v == 200 else f'WRONG stale {v}'", 'ok'),
    ('corrupt cache file', 'ImageList cache', "def case():\n    d = T/'d'; d.mkdir()\n    for i in range(3): PILImage.new('L', (8, 8), i).save(d/f'{i}.png')\n    ImageList.from_folder(d, convert_mode='L').tensors()\n    for c in (T/'home'/'cache').glob('*.pt'): c.write_bytes(b'junk')\n    t = ImageList.from_folder(d, convert_mode='L').tensors(); return 'OK' if int(t[2, 0, 0, 0]) == 2 else 'WRONG'", 'ok'),
    # ---- data block API
    ('split leaving no training item', 'split_by_rand_pct', "def case(): TensorList(list(torch.randn(4, 1))).split_by_rand_pct(1.0)", 'error:no training item'),
    ('bs=0', 'databunch', "def case(): TensorList(list(torch.randn(4, 1))).split_by_idx([0]).label_from_lists([0., 1., 2.], [0.], label_cls=FloatList).databunch(bs=0)", 'error:bs'),
    ('unknown transform argument', 'transform', "def case(): TensorList(list(torch.randn(4, 1))).split_by_idx([0]).label_from_lists([0., 1., 2.], [0.], label_cls=FloatList).transform(([], []), sze=4)", 'error:sze'),
    ('valid label unknown to training', 'label_from_folder', "def case():\n    for s, c in (('train', 'cat'), ('valid', 'cow')): photos(T/s/c, 1)\n    ImageList.from_folder(T).split_by_folder().label_from_folder()", 'error:cow'),
    ('split folder missing', 'split_by_folder', "def case(): photos(T/'train'/'a', 1); ImageList.from_folder(T).split_by_folder(valid='val')", "error:'val'"),
    ('mixed image sizes without size=', 'databunch', "def case():\n    photos(T/'d', 2, (20, 28)); photos(T/'e', 2, (30, 18))\n    data = ImageList.from_folder(T).split_by_idx([0]).label_from_func(lambda o: 'a').transform(([], [])).databunch(bs=3); next(iter(data.train_dl))", 'error:different sizes|e/0.png|size='),
    ('mask of another size', 'SegmentationItemList', "def case():\n    p = synth_segmentation(T/'s', 4, 2, (16, 16), 3); PILImage.new('L', (8, 8)).save(p/'trainannot'/'img000.png')\n    d = SegmentationItemList.from_folder(p).split_by_folder(valid='val').label_from_func(lambda x: p/f'{x.parent.name}annot'/f'{x.stem}.png', classes=['a', 'b', 'c']).databunch(bs=2); next(iter(d.train_dl))", 'error:img000.png|img001.png'),
    ('mask value above the classes', 'SegmentationItemList', "def case():\n    p = synth_segmentation(T/'s', 4, 2, (16, 16), 3); PILImage.new('L', (16, 16), 9).save(p/'trainannot'/'img000.png')\n    d = SegmentationItemList.from_folder(p).split_by_folder(valid='val').label_from_func(lambda x: p/f'{x.parent.name}annot'/f'{x.stem}.png', classes=['a', 'b', 'c']).databunch(bs=2); [b for b in d.train_dl]", 'error:img000.png'),
    ('missing target image', 'ImageImageList', "def case(): photos(T/'lr', 2); ImageImageList.from_folder(T/'lr').label_from_func(lambda x: T/'hr'/x.name)", 'error:hr'),
    # ---- the learner
    ('NaN learning rate with an optimizer', 'Learner.fit', "def case(): l = synth_learner(); l.fit(1, 0.1); l.fit(1, float('nan'))", 'error:learning rate'),
    ('negative learning rate', 'Learner.fit_one_cycle', "def case(): synth_learner().fit_one_cycle(1, -1e-3)", 'error:learning rate'),
    ('epochs=0', 'Learner.fit', "def case(): synth_learner().fit(0, 0.1)", 'error:epochs'),
    ('NaN weight decay', 'Learner.fit', "def case(): synth_learner().fit(1, 0.1, wd=float('nan'))", 'error:weight decay'),
    ('inf loss mid-fit', 'Learner.fit', "def case():\n    class P(Callback):\n        def after_pred(self, learn):\n            if learn.training and learn.iter == 2: learn.pred = learn.pred * float('inf')\n    l = synth_learner(); l.fit(2, 0.1, callbacks=[P()]); return 'OK' if l.nan_stop == (0, 2) and all(torch.isfinite(p).all() for p in l.model.parameters()) else 'WRONG'", 'ok'),
    ('one-item batch into BatchNorm', 'Learner.fit', "def case():\n    d = TensorList(list(torch.randn(3, 4))).split_by_idx([2]).label_from_lists([0., 1.], [0.], label_cls=FloatList).databunch(bs=1)\n    Learner(d, nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)), loss_func=MSELossFlat(), silent=True).fit(1, 0.1)", 'error:batch of one item'),
    ('callback that raises', 'Learner.fit', "def case():\n    class B(Callback):\n        def after_loss(self, learn): raise KeyError('boom')\n    synth_learner().fit(1, 0.1, callbacks=[B()])", 'error:B|after_loss|boom'),
    ('grey images into an RGB encoder', 'cnn_learner', "def case():\n    for c in 'ab': photos(T/c, 2)\n    d = ImageList.from_folder(T, convert_mode='L').split_by_idx([0]).label_from_folder().transform(size=16).databunch(bs=2); cnn_learner(d, models.resnet18, pretrained=False)", "error:convert_mode='L'"),
    ('pretrained weights offline', 'unet_learner', "def case():\n    os.environ['TORCH_HOME'] = str(T/'th'); p = synth_segmentation(T/'s', 4, 2, (16, 16), 3)\n    d = SegmentationItemList.from_folder(p).split_by_folder(valid='val').label_from_func(lambda x: p/f'{x.parent.name}annot'/f'{x.stem}.png', classes=['a', 'b', 'c']).databunch(bs=2)\n    unet_learner(d, models.resnet18)", 'error:pretrained=False'),
    ('load: shape mismatch, model unchanged', 'Learner.load', "def case():\n    l = synth_learner(path=T); l.fit(1, 0.1); l.save('m')\n    class W(nn.Module):\n        def __init__(s): super().__init__(); s.a, s.b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.ones(1))\n        def forward(s, x): return x * s.a[:1] + s.b\n    o = Learner(synth_dbunch(), W(), loss_func=MSELossFlat(), path=T, silent=True)\n    try: o.load('m')\n    except RuntimeError as e: return 'OK' if float(o.model.b) == 1 and 'does not fit' in str(e) else f'WRONG half-loaded'\n    return 'WRONG accepted'", 'ok'),
    ('load: a list, not a state dict', 'Learner.load', "def case(): l = synth_learner(path=T); (T/'models').mkdir(); torch.save([1, 2], T/'models'/'x.pth'); l.load('x')", 'error:x.pth|not a state dict'),
    ('load: a pickle with code', 'Learner.load', "def case():\n    import pickle, builtins\n    class E:\n        def __reduce__(self): return (builtins.print, ('EXECUTED',))\n    (T/'models').mkdir(); torch.save({'model': E()}, T/'models'/'e.pth', _use_new_zipfile_serialization=True); synth_learner(path=T).load('e')", 'error:e.pth'),
    ('load: another optimizer state', 'Learner.load', "def case():\n    s = synth_learner(path=T, opt_func=lambda g, lr: torch.optim.SGD(g, lr=lr, momentum=0.9)); s.fit(1, 0.1); s.save('s')\n    a = synth_learner(path=T); a.fit(1, 0.01); a.load('s', with_opt=True)", 'error:s.pth|another optimizer'),
    ('load: missing file', 'Learner.load', "def case(): synth_learner(path=T).load('nope')", 'error:nope.pth'),
    ('save: NaN weights, old file kept', 'Learner.save', "def case():\n    l = synth_learner(path=T); l.fit(1, 0.1); l.save('m'); before = (T/'models'/'m.pth').read_bytes()\n    with torch.no_grad(): l.model.a.fill_(float('nan'))\n    try: l.save('m')\n    except RuntimeError: return 'OK' if (T/'models'/'m.pth').read_bytes() == before else 'LOST old checkpoint'\n    return 'WRONG saved NaN'", 'ok'),
    ('save: disk full', 'Learner.save', "def case():\n    l = synth_learner(path=T); l.fit(1, 0.1); l.save('m'); before = (T/'models'/'m.pth').read_bytes()\n    def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')\n    torch.save = full\n    try: l.save('m')\n    except OSError as e: return 'OK' if 'm.pth' in str(e) and (T/'models'/'m.pth').read_bytes() == before else f'WRONG {e}'\n    return 'WRONG'", 'ok'),
    ('export: NaN weights', 'Learner.export', "def case():\n    l, _ = exported(T)\n    with torch.no_grad(): next(l.model.parameters()).fill_(float('nan'))\n    l.export(T/'nan.pth')", 'error:nan.pth|non-finite'),
    ('load_learner: tampered class name', 'load_learner', "def case():\n    _, f = exported(T); o = torch.load(f, weights_only=True); o['data']['x_cls'] = 'restorelab.core:parallel'; torch.save(o, T/'t.pth'); load_learner(T, 't.pth')", 'error:t.pth|item lists'),
    ('load_learner: wrong-length stats', 'load_learner', "def case():\n    _, f = exported(T); o = torch.load(f, weights_only=True); o['data']['norm'] = dict(mean=[.5], std=[.1, .2], do_x=True, do_y=False); torch.save(o, T/'t.pth'); load_learner(T, 't.pth')", 'error:t.pth|normalisation'),
    ('load_learner: not an export', 'load_learner', "def case(): torch.save({'a': torch.zeros(1)}, T/'x.pth'); load_learner(T, 'x.pth')", 'error:x.pth|not a restorelab export'),
    # ---- archives
    ('archive with ../ member', 'extract_archive', "def case(): extract_archive(tgz(T/'a.tgz', [('../evil', b'x')]), T/'out')", 'error:a.tgz|..'),
    ('archive with absolute member', 'extract_archive', "def case(): extract_archive(tgz(T/'a.tgz', [('/etc/evil', b'x')]), T/'out')", 'error:a.tgz|absolute'),
    ('file then folder of one name', 'extract_archive', "def case(): extract_archive(tgz(T/'a.tgz', [('t/x', b'f'), ('t/x/y', b'g')]), T/'out')", "error:a.tgz|'t/x'"),
    ('damaged archive', 'extract_archive', "def case(): (T/'a.tgz').write_bytes(b'\\x1f\\x8b' + b'junk' * 10); extract_archive(T/'a.tgz', T/'out')", 'error:a.tgz'),
    ('force_download keeps user files', 'untar_data', "def case():\n    a = tgz(T/'ds.tgz', [('ds/a.txt', b'a')]); p = untar_data(a); (p/'models').mkdir(); (p/'models'/'m.pth').write_bytes(b'w')\n    untar_data(a, force_download=True); return 'OK' if (p/'models'/'m.pth').exists() else 'LOST models/m.pth'", 'ok'),
    ('dataset missing offline', 'untar_data', "def case(): untar_data(DatasetURL('http://127.0.0.1:9/full.tgz'))", 'error:RESTORELAB_ARCHIVE'),
    ('RESTORELAB_ARCHIVE not a folder', 'untar_data', "def case(): os.environ['RESTORELAB_ARCHIVE'] = str(T/'nope'); untar_data(URLs.PETS)", 'error:RESTORELAB_ARCHIVE|nope'),
    ('tampered offline archive', 'untar_data', "def case(): (T/'ar').mkdir(); tgz(T/'ar'/'pets_small.tgz', [('x/a', b'a')]); os.environ['RESTORELAB_ARCHIVE'] = str(T/'ar'); untar_data(URLs.PETS)", 'error:pets_small.tgz|sha256'),
    # ---- other entry points
    ('parallel: a failing item', 'parallel', "def case(): parallel(lambda o, i: 1 / (o - 3), range(6), max_workers=1)", 'error:item 3'),
    ('crappify_folder into its source', 'crappify_folder', "def case(): photos(T/'hr'); crappify_folder(T/'hr', T/'hr'/'lr', Crappifier(seed=0))", 'error:hr/lr|must be outside'),
    ('psnr of different shapes', 'psnr', "def case(): psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8))", 'error:shape'),
    ('predict_tiled: overlap as large as the tile', 'predict_tiled', "def case(): predict_tiled(nn.Identity(), torch.zeros(3, 40, 40), tile=16, overlap=16)", 'error:overlap'),
    ('predict_tiled: a wide overlap', 'predict_tiled', "def case(): x = torch.rand(3, 40, 40); y = predict_tiled(nn.Identity(), x, tile=16, overlap=10); return 'OK' if torch.allclose(x, y, atol=1e-5) else 'WRONG'", 'ok'),
    # ---- the command line
    ('restore: output through a symlink into the input', 'restorelab restore', "def case():\n    _, f = exported(T/'g'); ph = photos(T/'in'/'sub', 2).parent; (T/'out').mkdir(); os.symlink(ph/'sub', T/'out'/'sub'); before = digest(ph)\n    from restorelab.cli import main; r = main(['restore', str(ph), str(T/'out'), '--model', str(f), '--overwrite'])\n    return 'OK' if r == 2 and digest(ph) == before else f'LOST inputs (exit {r})'", 'ok'),
    ('restore: output above the input', 'restorelab restore', "def case():\n    _, f = exported(T/'g'); P = T/'P'; ph = photos(P/'photos'/'photos', 1).parent; before = digest(P)\n    from restorelab.cli import main; r = main(['restore', str(ph), str(P), '--model', str(f), '--overwrite'])\n    return 'OK' if r == 2 and digest(P) == before else f'LOST inputs (exit {r})'", 'ok'),
    ('restore: output equal to the input', 'restorelab restore', "def case():\n    _, f = exported(T/'g'); ph = photos(T/'in', 1)\n    from restorelab.cli import main; return 'OK' if main(['restore', str(ph), str(ph), '--model', str(f)]) == 2 else 'WRONG'", 'ok'),
    ('restore: .gif written as GIF', 'restorelab restore', "def case():\n    _, f = exported(T/'g'); ph = photos(T/'in', 1, ext='gif')\n    from restorelab.cli import main; main(['restore', str(ph), str(T/'out'), '--model', str(f)])\n    return 'OK' if PILImage.open(T/'out'/'0.gif').format == 'GIF' else 'WRONG'", 'ok'),
    ('restore: missing model file', 'restorelab restore', "def case():\n    ph = photos(T/'in', 1)\n    from restorelab.cli import main; return 'OK' if main(['restore', str(ph), str(T/'out'), '--model', str(T/'no.pth')]) == 2 else 'WRONG'", 'ok'),
    ('restore: a bad file among good', 'restorelab restore', "def case():\n    _, f = exported(T/'g'); ph = photos(T/'in', 2); (ph/'bad.png').write_bytes(png_claiming(64, 64))\n    from restorelab.cli import main; r = main(['restore', str(ph), str(T/'out'), '--model', str(f)])\n    return 'OK' if r == 1 and len(list((T/'out').iterdir())) == 2 else f'WRONG exit {r}'", 'ok'),
    ('demo --epochs -1', 'restorelab demo', "def case():\n    import subprocess\n    r = subprocess.run([str(Path(sys.executable).parent/'restorelab'), 'demo', '--epochs', '-1', '--out', str(T/'d')], capture_output=True, text=True)\n    raise SystemExit(r.stderr.strip().splitlines()[-1] if r.returncode == 2 else f'exit {r.returncode}')", 'error:-1 is not above 0'),
    # ---- a second pass over every entry point
    ('split_by_idx: index out of range', 'split_by_idx', "def case(): tl().split_by_idx([7])", 'error:7|split_by_idx'),
    ('split_by_idxs: an item in both sets', 'split_by_idxs', "def case(): tl().split_by_idxs([0, 1, 2], [2, 3])", 'error:split_by_idxs|both'),
    ('split_by_rand_pct above 1', 'split_by_rand_pct', "def case(): tl().split_by_rand_pct(1.5)", 'error:valid_pct'),
    ('split_by_fname_file: missing file', 'split_by_fname_file', "def case(): photos(T/'i'); ImageList.from_folder(T/'i').split_by_fname_file('valid.txt')", 'error:valid.txt'),
    ('label_from_lists: wrong length', 'label_from_lists', "def case(): tl(4).split_by_idx([0]).label_from_lists([0., 1.], [0.], label_cls=FloatList)", 'error:label|3|2'),
    ('label_from_re: a name the pattern misses', 'label_from_re', "def case(): photos(T/'i'); ImageList.from_folder(T/'i').split_none().label_from_re(r'^(cat)_\\d+')", 'error:0.png|cat'),
    ('transform size=0', 'transform', "def case(): photos(T/'i'); ImageList.from_folder(T/'i').split_none().label_from_func(lambda o: 'a').transform(([], []), size=0)", 'error:size'),
    ('normalize: stats of the wrong length', 'normalize', "def case(): d = classif(T/'c').normalize(([0.5, 0.5], [0.2, 0.2])); next(iter(d.train_dl))", 'error:normali|2|3'),
    ('databunch num_workers=-1', 'databunch', "def case(): tl().split_by_idx([0]).label_from_lists([0., 1., 2.], [0.], label_cls=FloatList).databunch(bs=1, num_workers=-1)", 'error:num_workers'),
    ('add_test: a missing file', 'add_test', "def case(): d = classif(T/'c'); d.add_test([T/'nope.png']); next(iter(d.test_dl))", 'error:nope.png'),
    ('show_batch rows=0', 'show_batch', "def case(): classif(T/'c').show_batch(rows=0)", 'error:rows'),
    ('get_preds of a missing test set', 'Learner.get_preds', "def case(): synth_learner().get_preds(DatasetType.Test)", 'error:no test set|add_test'),
    ('predict: grey image into an RGB model', 'Learner.predict', "def case():\n    l = cnn_learner(classif(T/'c'), models.resnet18, pretrained=False, silent=True); PILImage.new('L', (16, 16)).save(T/'g.png')\n    l.predict(open_image(T/'g.png', convert_mode='L'))", "error:3 channel|convert_mode='RGB'"),
    ('predict: a path instead of an image', 'Learner.predict', "def case():\n    l = cnn_learner(classif(T/'c'), models.resnet18, pretrained=False, silent=True); r = l.predict(T/'c'/'a'/'0.png')\n    return 'OK' if str(r[0]) in ('a', 'b') else f'WRONG {r[0]}'", 'ok'),
    ('freeze_to beyond the groups', 'Learner.freeze_to', "def case(): cnn_learner(classif(T/'c'), models.resnet18, pretrained=False, silent=True).freeze_to(10)", 'error:freeze_to|10'),
    ('fit_one_cycle pct_start=1.5', 'Learner.fit_one_cycle', "def case(): synth_learner().fit_one_cycle(1, 1e-2, pct_start=1.5)", 'error:pct_start'),
    ('fit_one_cycle moms of one value', 'Learner.fit_one_cycle', "def case(): synth_learner().fit_one_cycle(1, 1e-2, moms=(0.9,))", 'error:moms'),
    ('lr_find with start_lr above end_lr', 'Learner.lr_find', "def case(): synth_learner().lr_find(start_lr=1, end_lr=1e-3)", 'error:start_lr'),
    ('Learner without a loss function', 'Learner', "def case(): Learner(tl().split_by_idx([0]).label_from_lists([0., 1., 2.], [0.], label_cls=ItemList).databunch(bs=1), nn.Linear(1, 1), silent=True).fit(1, 0.1)", 'error:loss_func'),
    ('targets outside the model outputs', 'Learner.fit', "def case(): Learner(classif(T/'c'), nn.Sequential(nn.Flatten(), nn.Linear(768, 1)), loss_func=CrossEntropyFlat(), silent=True).fit(1, 0.1)", 'error:CrossEntropyFlat|(2, 1)|values 0..1'),
    ('a metric that raises', 'Learner.fit', "def case():\n    def bad(p, t): return 1 / 0\n    synth_learner(metrics=[bad]).fit(1, 0.1)", 'error:metric bad|ZeroDivisionError'),
    ('load: a checkpoint of another model', 'Learner.load', "def case():\n    synth_learner(path=T).save('m')\n    Learner(synth_dbunch(), nn.Linear(1, 1), loss_func=MSELossFlat(), path=T, silent=True).load('m')", 'error:m.pth|weight'),
    ('load_learner: truncated file', 'load_learner', "def case(): _, f = exported(T); d = f.read_bytes(); (T/'t.pth').write_bytes(d[:len(d) // 2]); load_learner(T, 't.pth')", 'error:t.pth'),
    ('load_learner: missing file', 'load_learner', "def case(): load_learner(T, 'nope.pth')", 'error:nope.pth'),
    ('export into a folder not there yet', 'Learner.export', "def case(): l, _ = exported(T); f = l.export(T/'new'/'e.pth'); return 'OK' if load_learner(f.parent, f.name) is not None else 'WRONG'", 'ok'),
    ('validate without a validation set', 'Learner.validate', "def case(): Learner(tl().split_none().label_from_lists([0.] * 4, [], label_cls=FloatList).databunch(bs=2), nn.Linear(1, 1), loss_func=MSELossFlat(), silent=True).validate()", 'error:validation'),
    ('cnn_learner: unknown arch name', 'cnn_learner', "def case(): cnn_learner(classif(T/'c'), 'resnet999', pretrained=False)", 'error:resnet999'),
    ('unet_learner: odd image size', 'unet_learner', "def case():\n    for s in ('lr', 'hr'): photos(T/s, 3, (50, 70))\n    d = ImageImageList.from_folder(T/'lr').split_by_idx([0]).label_from_func(lambda x: T/'hr'/x.name).transform(([], []), tfm_y=True).databunch(bs=2)\n    l = unet_learner(d, models.resnet18, pretrained=False, loss_func=MSELossFlat(), silent=True); l.fit(1, 1e-3)\n    return 'OK' if l.pred_batch().shape[-2:] == (50, 70) else 'WRONG'", 'ok'),
    ('to_fp16 on the CPU', 'Learner.to_fp16', "def case(): synth_learner().to_fp16()", 'error:CUDA|to_bf16'),
    ('FeatureLoss: layer index out of range', 'FeatureLoss', "def case(): FeatureLoss(vgg16_bn_features(), [100], [1.])", 'error:100'),
    ('FeatureLoss: weights and layers of different lengths', 'FeatureLoss', "def case(): FeatureLoss(vgg16_bn_features(), [22, 32], [1.])", 'error:layer'),
    ('gram_matrix of a 3-d tensor', 'gram_matrix', "def case(): gram_matrix(torch.zeros(3, 4, 4))", 'error:gram_matrix'),
    ('accuracy: batch sizes differ', 'accuracy', "def case(): accuracy(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))", 'error:accuracy|4|5'),
    ('psnr: NaN input', 'psnr', "def case(): psnr(torch.full((3, 8, 8), float('nan')), torch.zeros(3, 8, 8))", 'error:psnr|non-finite'),
    ('psnr: a float numpy array', 'psnr', "def case(): psnr(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))", 'error:ambiguous'),
    ('ssim: image smaller than its window', 'ssim', "def case(): ssim(np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5, 3), np.uint8))", 'error:ssim|11'),
    ('JPEG quality above 100', 'Crappifier', "def case(): Crappifier([JPEG(10, 150)])", 'error:JPEG quality'),
    ('crappify_folder: no images in the source', 'crappify_folder', "def case(): (T/'e').mkdir(); crappify_folder(T/'e', T/'o', Crappifier(seed=0))", 'error:e|no image'),
    ('imresize: scale 0', 'imresize', "def case(): imresize(np.zeros((8, 8, 3), np.uint8), 0)", 'error:scale'),
    ('restore: input folder missing', 'restorelab restore', "def case(): _, f = exported(T/'g'); cli('restore', T/'nope', T/'out', '--model', f)", 'error:nope|does not exist'),
    ('restore: empty input folder', 'restorelab restore', "def case(): _, f = exported(T/'g'); (T/'in').mkdir(); cli('restore', T/'in', T/'out', '--model', f)", 'error:in|no image'),
    ('restore --tile 0', 'restorelab restore', "def case(): cli('restore', T, T/'out', '--model', T/'m.pth', '--tile', '0')", 'error:--tile'),
    ('restore: a checkpoint instead of an export', 'restorelab restore', "def case(): l, _ = exported(T/'g'); p = l.save('ck', return_path=True); ph = photos(T/'in', 1); cli('restore', ph, T/'out', '--model', p)", 'error:ck.pth|export'),
    ('restore: a truncated export', 'restorelab restore', "def case(): _, f = exported(T/'g'); d = f.read_bytes(); (T/'t.pth').write_bytes(d[:len(d) // 2]); ph = photos(T/'in', 1); cli('restore', ph, T/'out', '--model', T/'t.pth')", 'error:t.pth'),
    ('restore: OUT_DIR is a file', 'restorelab restore', "def case(): _, f = exported(T/'g'); ph = photos(T/'in', 1); (T/'o').write_text('keep'); cli('restore', ph, T/'o', '--model', f)", 'error:/o is a file'),
    ('demo --out is a file', 'restorelab demo', "def case(): (T/'o').write_text('keep'); cli('demo', '--out', T/'o', '--epochs', '1')", 'error:/o is a file'),
    ('unknown subcommand', 'restorelab', "def case(): cli('restor')", 'error:invalid choice'),
]


def classify(expect: str, rc: int, out: str) -> tuple:
    "The class of one case's outcome and what it said."
    line = next((l for l in out.splitlines() if l.startswith(('RAISED', 'RETURNED'))), '')
    if rc not in (0, 1) or not line: return 'crash', f'exit {rc} {out[-200:]}'
    said = line.split(' ', 1)[1] if ' ' in line else ''
    if expect == 'ok':
        if line.startswith('RAISED'): return 'unclear', said
        value = said
        return ('handled', value) if value == 'OK' else ('lost', value) if value.startswith('LOST') else ('silent', value)
    wanted = expect.split(':', 1)[1].split('|')
    if line.startswith('RETURNED'): return 'silent', f'accepted: {said}'
    kind, _, msg = said.partition(' :: ')
    raw = kind.split('.')[0] in ('torch', 'PIL', 'numpy') or kind.startswith('_pickle')
    if 'SystemExit' in kind: msg, raw = msg, False
    return ('clear', said) if all(w in msg for w in wanted) and not raw else ('unclear', said)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, help='also write the table (markdown) here')
    p.add_argument('--only', default='', help='run the cases whose id or entry point holds this')
    p.add_argument('--start', type=int, default=0, help='skip the first START cases')
    args = p.parse_args()
    rows, tally, t0 = [], {}, time.time()
    for cid, entry, code, expect in CASES[args.start:]:
        if args.only and args.only not in cid and args.only not in entry: continue
        with tempfile.TemporaryDirectory() as tmp:
            script = PRELUDE + '\n' + textwrap.dedent(code) + '\n' + RUNNER
            r = subprocess.run([sys.executable, '-c', script, tmp], capture_output=True, text=True, timeout=600)
        cls, said = classify(expect, r.returncode, r.stdout + r.stderr)
        tally[cls] = tally.get(cls, 0) + 1
        rows.append((cid, entry, cls, said))
        print(f'{cls:8s} {entry:24s} {cid}: {said[:150]}', flush=True)
    order = ['handled', 'clear', 'unclear', 'silent', 'lost', 'crash']
    summary = f'tried {len(rows)}: ' + ', '.join(f'{tally.get(k, 0)} {k}' for k in order) + f' ({time.time() - t0:.0f} s)'
    print(summary)
    if args.out:
        lines = ['| case | entry point | outcome | what it said |', '| --- | --- | --- | --- |']
        lines += [f'| {c} | `{e}` | {k} | {s[:160].replace("|", "/")} |' for c, e, k, s in rows]
        args.out.write_text('\n'.join([summary, '', *lines]) + '\n')


if __name__ == '__main__':
    main()
