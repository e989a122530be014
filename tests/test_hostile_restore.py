"""`restorelab restore` and `restorelab demo` against hostile arguments and folders: no input is ever overwritten, no
output has the wrong format or colour profile, and every expected failure is one message and exit status 2."""
import hashlib, os, subprocess, sys, warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from torchvision import models

from restorelab.cli import main, restore_folder
from restorelab.data.vision import ImageImageList
from restorelab.losses import MSELossFlat
from restorelab.vision.learner import unet_learner


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    "A tiny exported U-Net (RGB in, RGB out), as lesson 7's generator is exported."
    work = tmp_path_factory.mktemp('gen')
    rng = np.random.default_rng(0)
    for sub in ('lr', 'hr'):
        (work/sub).mkdir()
        for k in range(3): PILImage.fromarray(rng.integers(0, 255, (24, 32, 3), np.uint8)).save(work/sub/f'{k}.png')
    data = (ImageImageList.from_folder(work/'lr').split_by_idx([0]).label_from_func(lambda x: work/'hr'/x.name)
            .transform(([], []), size=24, tfm_y=True).databunch(bs=2))
    learn = unet_learner(data, models.resnet18, pretrained=False, y_range=(0., 1.), loss_func=MSELossFlat(), silent=True)
    return learn.export(work/'gen.pth')


def _photos(folder: Path, names=('a.png',)) -> Path:
    rng = np.random.default_rng(1)
    for name in names:
        (folder/name).parent.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(rng.integers(0, 255, (20, 28, 3), np.uint8)).save(folder/name)
    return folder

def _digests(folder: Path) -> dict:
    return {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.rglob('*') if f.is_file() and not f.is_symlink()}

def _restore(*args):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return main(['restore', *map(str, args)])


# ---------------------------------------------------------------- no input is ever overwritten

def test_symlink_in_output_into_input_is_refused(tmp_path, model_file):
    photos = _photos(tmp_path/'photos', ['sub/a.png'])
    out = tmp_path/'out'; out.mkdir()
    os.symlink(photos/'sub', out/'sub')           # OUT_DIR/sub is IN_DIR/sub: its outputs would be the inputs
    before = _digests(photos)
    for extra in ([], ['--overwrite']):
        assert _restore(photos, out, '--model', model_file, '--tile', 32, '--overlap', 8, *extra) == 2
        assert _digests(photos) == before


def test_output_folder_above_the_input_is_refused_when_it_would_overwrite(tmp_path, model_file):
    "`restore P/photos P` with P/photos/photos/a.png: the output P/photos/a.png is an input."
    parent = tmp_path/'P'
    photos = _photos(parent/'photos', ['photos/a.png', 'b.png'])
    before = _digests(parent)
    assert _restore(photos, parent, '--model', model_file, '--overwrite', '--tile', 32, '--overlap', 8) == 2
    assert _digests(parent) == before


def test_output_folder_above_the_input_works_when_nothing_clashes(tmp_path, model_file):
    photos = _photos(tmp_path/'P'/'photos', ['a.png'])
    res = restore_folder(photos, tmp_path/'P', model_file, tile=32, overlap=8, show_progress=False)
    assert [p.name for p in res['restored']] == ['a.png'] and (tmp_path/'P'/'a.png').is_file()


# ---------------------------------------------------------------- outputs in the format and colour space of their names

def test_output_format_follows_the_suffix(tmp_path, model_file):
    photos = tmp_path/'photos'; photos.mkdir()
    rng = np.random.default_rng(2)
    PILImage.fromarray(rng.integers(0, 255, (20, 28, 3), np.uint8)).save(photos/'a.gif')
    PILImage.fromarray(rng.integers(0, 255, (20, 28), np.uint8)).save(photos/'b.pgm')
    restore_folder(photos, tmp_path/'out', model_file, tile=32, overlap=8, show_progress=False)
    with PILImage.open(tmp_path/'out'/'a.gif') as im: assert im.format == 'GIF'
    with PILImage.open(tmp_path/'out'/'b.pgm') as im: assert im.format == 'PPM' and im.mode == 'L'


def _icc(space: bytes) -> bytes:
    "A stand-in ICC profile: what matters here is the colour space in its header (bytes 16-20)."
    return bytes(16) + space + bytes(108)

def test_icc_profile_kept_only_when_it_describes_the_output(tmp_path, model_file):
    photos = tmp_path/'photos'; photos.mkdir()
    rng = np.random.default_rng(3)
    rgb = PILImage.fromarray(rng.integers(0, 255, (20, 28, 3), np.uint8))
    rgb.save(photos/'rgb.jpg', icc_profile=_icc(b'RGB '))
    rgb.convert('CMYK').save(photos/'cmyk.jpg', icc_profile=_icc(b'CMYK'))
    rgb.convert('L').save(photos/'grey.png', icc_profile=_icc(b'GRAY'))   # the model makes RGB out of it
    restore_folder(photos, tmp_path/'out', model_file, tile=32, overlap=8, show_progress=False)
    with PILImage.open(tmp_path/'out'/'rgb.jpg') as im: assert im.info.get('icc_profile') == _icc(b'RGB ')
    with PILImage.open(tmp_path/'out'/'cmyk.jpg') as im: assert im.mode == 'RGB' and not im.info.get('icc_profile')
    with PILImage.open(tmp_path/'out'/'grey.png') as im: assert im.mode == 'RGB' and not im.info.get('icc_profile')


# ---------------------------------------------------------------- the command line: messages, not tracebacks

RESTORELAB = Path(sys.executable).parent/'restorelab'   # the command the package installs

def _cli(*args, cwd=None):
    return subprocess.run([str(RESTORELAB), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd)

@pytest.mark.parametrize('args, says', [(['--epochs', '-1'], '-1 is not above 0'), (['--epochs', '0'], '0 is not above 0'),
                                        (['--bs', '0'], '0 is not above 0'), (['--lr', 'nan'], 'nan is not above 0'),
                                        (['--epochs', 'two'], "'two' is not a number")])
def test_demo_refuses_nonsense_numbers(tmp_path, args, says):
    r = _cli('demo', '--out', tmp_path/'demo', *args, cwd=tmp_path)
    assert r.returncode == 2 and says in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'demo').exists()


def test_restore_output_that_is_a_file(tmp_path, model_file):
    photos = _photos(tmp_path/'photos')
    (tmp_path/'out.png').write_bytes(b'x')
    r = _cli('restore', photos, tmp_path/'out.png', '--model', model_file)
    assert r.returncode == 2 and 'is a file, not a folder' in r.stderr and 'Traceback' not in r.stderr
    r = _cli('restore', photos, tmp_path/'out.png'/'sub', '--model', model_file)   # a file on the way to it: an OSError
    assert r.returncode == 2 and 'restorelab restore:' in r.stderr and 'Traceback' not in r.stderr
    assert (tmp_path/'out.png').read_bytes() == b'x'


def test_restore_bad_tile_arguments(tmp_path, model_file):
    photos = _photos(tmp_path/'photos')
    for args, says in ((['--tile', '0'], '0 is not above 0'), (['--overlap', '-3'], '-3 is below 0')):
        r = _cli('restore', photos, tmp_path/'out', '--model', model_file, *args)
        assert r.returncode == 2 and says in r.stderr and 'Traceback' not in r.stderr


def test_demo_output_that_is_a_file(tmp_path):
    (tmp_path/'demo').write_bytes(b'x')
    r = _cli('demo', '--out', tmp_path/'demo', '--epochs', '1', '--sample', cwd=tmp_path)
    assert r.returncode == 2 and 'restorelab demo:' in r.stderr and 'Traceback' not in r.stderr
    assert (tmp_path/'demo').read_bytes() == b'x'
