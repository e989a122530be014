"Bad segmentation inputs: every error names the files involved, and nothing is half-built."
import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from restorelab.data.segmentation import SegmentationItemList, SegmentationLabelList, open_mask
from restorelab.test_utils import synth_segmentation
from restorelab.metrics import dice, foreground_acc, dice_per_class

CODES = ['Background', 'Class1', 'Class2']


@pytest.fixture
def seg(tmp_path):
    return synth_segmentation(tmp_path/'seg', n_train=4, n_valid=2, size=(20, 30), n_classes=3)


def _get_y(path):
    return lambda x: path/f'{x.parent.name}annot'/f'{x.stem}.png'


def _src(path, **kwargs):
    return SegmentationItemList.from_folder(path).split_by_folder(valid='val').label_from_func(_get_y(path), **kwargs)


def test_missing_mask_names_image_and_path(seg):
    (seg/'trainannot'/'img002.png').unlink()
    with pytest.raises(FileNotFoundError) as e: _src(seg, classes=CODES)
    msg = str(e.value)
    assert str(seg/'train'/'img002.png') in msg and str(seg/'trainannot'/'img002.png') in msg


@pytest.mark.parametrize('preload', [True, False])
def test_values_outside_codes(seg, preload):
    fn = seg/'valannot'/'img001.png'
    arr = np.array(PILImage.open(fn)); arr[0, 0], arr[1, 1] = 5, 200
    PILImage.fromarray(arr).save(fn)
    src = _src(seg, classes=CODES, preload=preload)
    with pytest.raises(ValueError, match=r'img001\.png has values \[5, 200\] outside the 3 classes'):
        data = src.databunch(bs=2)
        for _ in data.valid_dl: pass


def test_more_codes_accept_the_values(seg):
    fn = seg/'trainannot'/'img000.png'
    arr = np.array(PILImage.open(fn)); arr[0, 0] = 4
    PILImage.fromarray(arr).save(fn)
    src = _src(seg, classes=CODES + ['A', 'B'])
    assert int(src.train.y.get_tensor(0).max()) == 4


@pytest.mark.parametrize('preload', [True, False])
def test_mask_size_differs(seg, preload):
    PILImage.fromarray(np.zeros((21, 30), np.uint8)).save(seg/'trainannot'/'img000.png')
    if preload:   # every mask must differ for the preload path (one tensor): make them all 21x30
        for fn in (seg/'trainannot').iterdir(): PILImage.fromarray(np.zeros((21, 30), np.uint8)).save(fn)
    src = _src(seg, classes=CODES, preload=preload)
    with pytest.raises(ValueError, match=r'img000\.png is 21x30 but its image .*img000\.png is 20x30'):
        data = src.databunch(bs=2)
        for _ in data.fix_dl: pass


def test_div_masks(tmp_path):
    fn = tmp_path/'m.png'
    PILImage.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(fn)
    assert open_mask(fn, div=True).data.tolist() == [[[0, 1], [1, 0]]]
    ll = SegmentationLabelList([fn], classes=['bg', 'fg'], div=True)
    assert ll.get_tensor(0).tolist() == [[[0, 1], [1, 0]]]
    with pytest.raises(ValueError, match='outside the 2 classes'):
        SegmentationLabelList([fn], classes=['bg', 'fg']).get_tensor(0)


def test_metrics_shapes():
    scores = torch.randn(2, 4, 5, 6)
    target = torch.randint(0, 4, (2, 1, 5, 6))
    assert 0 <= float(foreground_acc(scores, target, bkg_idx=3)) <= 1
    assert dice_per_class(scores, target).shape == (4,)
    perfect = torch.nn.functional.one_hot(target[:, 0], 4).permute(0, 3, 1, 2).float()
    assert float(dice(perfect, target)) == pytest.approx(1.0)
    assert float(foreground_acc(perfect, target, bkg_idx=0)) == 1.0
    with pytest.raises(ValueError, match='predicted pixels'):
        dice(torch.randn(2, 1, 5, 6), torch.zeros(2, 1, 5, 7, dtype=torch.long))
