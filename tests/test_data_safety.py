"Bad input to the data block API: clear errors naming the file or argument, or a warning listing skipped files."
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from restorelab.data.vision import ImageList, ImageImageList, ImageReadError, open_image
from restorelab.data.transforms import rand_pad


def _digits(root: Path, n_train=4, n_valid=2, classes=('3', '7'), size=8):
    for split, n in (('training', n_train), ('testing', n_valid)):
        for c in classes:
            (root/split/c).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                PILImage.fromarray(np.full((size, size), (13 * k) % 240 + int(c) + 1, np.uint8)).save(root/split/c/f'{k}.png')
    return root


@pytest.mark.parametrize('name,content', [
    ('empty.png', b''),
    ('text.png', b'hello, I am not a picture'),
    ('truncated.png', None),
    ('fake.jpg', b'\xff\xd8\xff\xe0 not really a jpeg'),
])
def test_unreadable_file_error_names_it(tmp_path, name, content):
    root = _digits(tmp_path)
    if content is None: content = (root/'training'/'3'/'0.png').read_bytes()[:50]
    (root/'training'/'3'/name).write_bytes(content)
    il = ImageList.from_folder(root, convert_mode='L', preload=False)
    idx = [i for i, o in enumerate(il.items) if o.name == name][0]
    with pytest.raises(ImageReadError, match=name): il[idx]
    # the error also surfaces, naming the file, when the data is loaded in bulk
    data = il.split_by_folder(train='training', valid='testing').label_from_folder().databunch(bs=2)
    with pytest.raises(Exception, match=name):
        for _ in data.fix_dl: pass


def test_unreadable_file_error_in_preload(tmp_path):
    root = _digits(tmp_path)
    (root/'training'/'7'/'bad.png').write_bytes(b'garbage')
    ll = ImageList.from_folder(root, convert_mode='L').split_by_folder(train='training', valid='testing').label_from_folder()
    with pytest.raises(ImageReadError, match='bad.png'): ll.databunch(bs=2)


def test_skip_bad_warns_listing_files(tmp_path):
    root = _digits(tmp_path)
    (root/'training'/'7'/'bad1.png').write_bytes(b'garbage')
    (root/'testing'/'3'/'bad2.png').write_bytes(b'')
    with pytest.warns(UserWarning, match='skipped 2 unreadable') as rec:
        il = ImageList.from_folder(root, convert_mode='L', skip_bad=True)
    msg = next(str(w.message) for w in rec if 'skipped' in str(w.message))
    assert 'bad1.png' in msg and 'bad2.png' in msg
    assert len(il) == 12
    data = il.split_by_folder(train='training', valid='testing').label_from_folder().databunch(bs=4)
    assert sum(len(x) for x, _ in data.fix_dl) == 8


def test_empty_folder(tmp_path):
    (tmp_path/'empty'/'sub').mkdir(parents=True)
    with pytest.raises(ValueError, match='no files found'): ImageList.from_folder(tmp_path/'empty')
    with pytest.raises(FileNotFoundError, match='not a folder'): ImageList.from_folder(tmp_path/'missing')


def test_unknown_validation_label(tmp_path):
    root = _digits(tmp_path)
    (root/'testing'/'9').mkdir()
    PILImage.fromarray(np.zeros((8, 8), np.uint8)).save(root/'testing'/'9'/'0.png')
    sd = ImageList.from_folder(root, convert_mode='L').split_by_folder(train='training', valid='testing')
    with pytest.raises(ValueError, match=r"\['9'\].*testing/9/0.png"): sd.label_from_folder()


def test_split_folder_missing(tmp_path):
    root = _digits(tmp_path)
    with pytest.raises(ValueError, match="no items in folder 'valid'"):
        ImageList.from_folder(root).split_by_folder(train='training')


def test_missing_target_names_input_and_target(tmp_path):
    lr, hr = tmp_path/'lr', tmp_path/'hr'
    lr.mkdir(); hr.mkdir()
    for k in range(3):
        PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(lr/f'{k}.png')
        if k != 1: PILImage.fromarray(np.zeros((8, 8, 3), np.uint8)).save(hr/f'{k}.png')
    with pytest.raises(FileNotFoundError, match=r'lr/1.png.*hr/1.png'):
        ImageImageList.from_folder(lr).split_none().label_from_func(lambda x: hr/x.name)


def test_preload_mixed_sizes_is_a_clear_error(tmp_path):
    root = _digits(tmp_path)
    PILImage.fromarray(np.zeros((9, 8), np.uint8)).save(root/'training'/'3'/'odd.png')
    ll = ImageList.from_folder(root, convert_mode='L').split_by_folder(train='training', valid='testing').label_from_folder()
    with pytest.raises(ValueError, match='odd.png'): ll.databunch(bs=2)
    # with preload off, the same data loads item by item (and a size transform makes the batch)
    ll = ImageList.from_folder(root, convert_mode='L', preload=False).split_by_folder(train='training', valid='testing')
    data = ll.label_from_folder().transform(([], []), size=8).databunch(bs=2)
    assert next(iter(data.train_dl))[0].shape == (2, 1, 8, 8)


def test_preload_cache_tracks_file_changes(tmp_path):
    root = _digits(tmp_path)
    il = ImageList.from_folder(root/'training', convert_mode='L')
    t1 = il.tensors().clone()
    f = il.items[0]
    PILImage.fromarray(np.full((8, 8), 255, np.uint8)).save(f)
    t2 = ImageList(il.items, path=il.path, convert_mode='L').tensors()
    assert (t2[0] == 255).all() and torch.equal(t1[1:], t2[1:])


def test_batch_and_item_pipelines_agree(tmp_path):
    "The in-memory batch path and the per-item DataLoader path give the same data when transforms are deterministic."
    root = _digits(tmp_path)
    ll = ImageList.from_folder(root, convert_mode='L').split_by_folder(train='training', valid='testing').label_from_folder()
    fast = ll.databunch(bs=3)
    slow = ll.databunch(bs=3, collate_fn=torch.utils.data.default_collate)
    assert type(fast.fix_dl.dl).__name__ == 'TensorBatchLoader' and type(slow.fix_dl.dl).__name__ == 'DataLoader'
    for (x1, y1), (x2, y2) in zip(fast.fix_dl, slow.fix_dl):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_rand_pad_batches_differ_per_sample(tmp_path):
    root = _digits(tmp_path, n_train=16)
    ll = ImageList.from_folder(root, convert_mode='L').split_by_folder(train='training', valid='testing').label_from_folder()
    data = ll.transform(([*rand_pad(padding=3, size=8, mode='zeros')], [])).databunch(bs=32)
    xb, _ = next(iter(data.fix_dl))
    assert xb.shape == (32, 1, 8, 8)
    # every image is constant inside, so zeros (from the padding) show where each crop landed: not all the same
    masks = (xb == 0).flatten(1)
    assert len({tuple(m.tolist()) for m in masks}) > 1


def _pairs(root: Path, x_size, y_size, n=4):
    "`n` input/target image pairs: inputs of `x_size` (w, h) in root/lr, targets of `y_size` in root/hr."
    rng = np.random.default_rng(0)
    for sub, (w, h) in (('lr', x_size), ('hr', y_size)):
        (root/sub).mkdir(parents=True, exist_ok=True)
        for k in range(n): PILImage.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(root/sub/f'{k}.png')
    return root


@pytest.mark.parametrize('preload', [True, False])   # the batched (small images) and the per-item pipelines
def test_tfm_y_target_size_mismatch_is_an_error(tmp_path, preload):
    root = _pairs(tmp_path, (20, 16), (40, 32))
    src = ImageImageList.from_folder(root/'lr', preload=preload).split_none().label_from_func(lambda x: root/'hr'/x.name)
    # one geometry for both, but the target is twice the input's size: an error naming both files, not a resize
    # (raised by `databunch` when the small images are stacked up front, by the first batch otherwise)
    with pytest.raises(ValueError, match=r'target .*hr/\d\.png is 32x40 but its input .*lr/\d\.png is 16x20 after the transforms'):
        src.transform(([], []), tfm_y=True).databunch(bs=2).one_batch()
    # with `size=` both are resized to it
    data = src.transform(([], []), size=12, tfm_y=True).databunch(bs=2)
    xb, yb = data.one_batch()
    assert xb.shape == yb.shape == (2, 3, 12, 12)
    # a target at another scale (super-resolution) is fine without tfm_y
    data = src.transform(([], []), tfm_y=False).databunch(bs=2)
    xb, yb = data.one_batch()
    assert xb.shape[-2:] == (16, 20) and yb.shape[-2:] == (32, 40)
