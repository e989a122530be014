"""The second pass over every entry point (`tests/hostile_survey.py`): arguments that were accepted and gave a wrong
result, and errors that did not name their cause. One test per case; each failed before the fix it checks."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch import nn
from torchvision import models

from restorelab.callback import Callback
from restorelab.cli import main
from restorelab.crappify import crappify_folder
from restorelab.data.bunch import DatasetType
from restorelab.data.core import TensorList, FloatList
from restorelab.data.vision import ImageList, ImageImageList, open_image
from restorelab.feature_loss import gram_matrix
from restorelab.learner import Learner, LossFuncError
from restorelab.losses import CrossEntropyFlat, MSELossFlat
from restorelab.metrics import accuracy, psnr
from restorelab.test_utils import synth_learner
from restorelab.vision.learner import cnn_learner, unet_learner


def _photos(folder, n=4, size=(16, 16), mode='RGB'):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 255, (*size, 3), np.uint8)
        PILImage.fromarray(a).convert(mode).save(folder/f'{i}.png')
    return folder

def _classif(path, **kwargs):
    for c in 'ab': _photos(path/c)
    return (ImageList.from_folder(path, **kwargs).split_by_rand_pct(0.25, seed=0).label_from_folder()
            .transform(size=16).databunch(bs=2))

def _tl(n=4): return TensorList(list(torch.randn(n, 1)))


# ---------------------------------------------------------------- the data block API

def test_split_by_idx_names_the_indices_out_of_range():
    with pytest.raises(IndexError, match=r'\[7\].*\[0, 4\)'): _tl().split_by_idx([7])


def test_split_by_idxs_refuses_an_item_in_both_sets():
    with pytest.raises(ValueError, match='both the training and the validation set'): _tl().split_by_idxs([0, 1, 2], [2, 3])
    with pytest.raises(IndexError, match='train_idx holds'): _tl().split_by_idxs([0, 9], [1])


@pytest.mark.parametrize('size', [0, -4, (16, 0), 2.5, 'big', (1, 2, 3)])
def test_transform_refuses_a_size_that_is_not_pixels(size):
    ll = _tl().split_by_idx([0]).label_from_lists([0., 1., 2.], [0.], label_cls=FloatList)
    with pytest.raises(ValueError, match='transform: size='): ll.transform(([], []), size=size)


def test_transform_takes_numpy_sizes():
    ll = _tl().split_by_idx([0]).label_from_lists([0., 1., 2.], [0.], label_cls=FloatList)
    ll.transform(([], []), size=np.array([90, 120]) // 2)   # the lessons' `src_size//2`


def test_normalize_refuses_stats_of_the_wrong_length(tmp_path):
    data = _classif(tmp_path)
    with pytest.raises(ValueError, match=r"normalize: 2 per-channel statistics for images of 3 channel\(s\)"):
        data.normalize(([0.5, 0.5], [0.2, 0.2]))
    assert data.norm is None   # nothing half-done
    data.normalize(([0.5], [0.2]))   # one value for every channel is fine
    next(iter(data.train_dl))


def test_databunch_refuses_negative_num_workers():
    ll = _tl().split_by_idx([0]).label_from_lists([0., 1., 2.], [0.], label_cls=FloatList)
    with pytest.raises(ValueError, match='num_workers'): ll.databunch(bs=1, num_workers=-1)


def test_show_batch_and_show_results_refuse_zero_rows(tmp_path):
    data = _classif(tmp_path)
    with pytest.raises(ValueError, match='show_batch: rows'): data.show_batch(rows=0)
    learn = cnn_learner(data, models.resnet18, pretrained=False, silent=True)
    with pytest.raises(ValueError, match='show_results: rows'): learn.show_results(rows=0)


def test_a_missing_test_set_says_how_to_add_one():
    with pytest.raises(ValueError, match=r'no test set: add one with data.add_test'):
        synth_learner().get_preds(DatasetType.Test)


# ---------------------------------------------------------------- prediction

def test_predict_refuses_an_image_with_other_channels(tmp_path):
    learn = cnn_learner(_classif(tmp_path/'c'), models.resnet18, pretrained=False, silent=True)
    PILImage.new('L', (16, 16)).save(tmp_path/'g.png')
    with pytest.raises(ValueError, match=r"takes images of 3 channel\(s\).*convert_mode='RGB'"):
        learn.predict(open_image(tmp_path/'g.png', convert_mode='L'))


def test_predict_reads_a_file_as_the_training_images_were_read(tmp_path):
    for s in ('lr', 'hr'): _photos(tmp_path/s, 3, mode='L')
    data = (ImageImageList.from_folder(tmp_path/'lr', convert_mode='L').split_by_idx([0])
            .label_from_func(lambda x: tmp_path/'hr'/x.name, convert_mode='L').transform(([], []), tfm_y=True)
            .databunch(bs=2))
    body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
    learn = Learner(data, body, loss_func=MSELossFlat(), silent=True)
    _photos(tmp_path/'rgb', 1)   # an RGB file: read as grey, as the training images were
    img, _, raw = learn.predict(tmp_path/'rgb'/'0.png')
    assert raw.shape == (1, 16, 16)
    with pytest.raises(OSError, match='nope.png'): learn.predict(tmp_path/'nope.png')


# ---------------------------------------------------------------- the learner

def test_freeze_to_refuses_a_group_that_does_not_exist(tmp_path):
    learn = cnn_learner(_classif(tmp_path), models.resnet18, pretrained=False, silent=True)
    n = len(learn.layer_groups)
    for bad in (n, 10, -n - 1, 1.5):
        with pytest.raises(ValueError, match='freeze_to'): learn.freeze_to(bad)
    learn.freeze_to(-n); assert all(p.requires_grad for p in learn.model.parameters())


@pytest.mark.parametrize('kwargs, match', [(dict(pct_start=1.5), 'pct_start'), (dict(pct_start=float('nan')), 'pct_start'),
                                           (dict(moms=(0.9,)), 'moms'), (dict(div_factor=0), 'div_factor')])
def test_fit_one_cycle_refuses_bad_schedules(kwargs, match):
    learn = synth_learner()
    with pytest.raises(ValueError, match=match): learn.fit_one_cycle(1, 1e-2, **kwargs)


def test_lr_find_refuses_a_range_upside_down():
    with pytest.raises(ValueError, match='start_lr'): synth_learner().lr_find(start_lr=1, end_lr=1e-3)
    with pytest.raises(ValueError, match='num_it'): synth_learner().lr_find(num_it=0)


def test_an_error_is_not_hidden_by_a_callback_that_cannot_clean_up():
    class Fails(Callback):
        order = -30   # before the others' before_fit
        def before_fit(self, learn): raise KeyError('the real cause')
    class NeedsSetup(Callback):
        def before_fit(self, learn): self.resource = object()
        def after_fit(self, learn): del self.resource   # AttributeError when before_fit never ran
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(Exception, match='the real cause'):
            synth_learner().fit(1, 0.1, callbacks=[Fails(), NeedsSetup()])
    assert any('after_fit also failed' in str(w.message) for w in caught)


def test_a_loss_that_fails_says_on_what(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(768, 1))   # one output, two classes
    learn = Learner(_classif(tmp_path), model, loss_func=CrossEntropyFlat(), silent=True)
    with pytest.raises(LossFuncError, match=r'CrossEntropyFlat failed on predictions of shape \(2, 1\) and targets of '
                                            r'shape \(2,\) \(values [01]\.\.1\)'):   # a batch holding class 1
        learn.fit(1, 0.1)


def test_a_metric_that_fails_is_named():
    def bad(pred, targ): return 1 / 0
    with pytest.raises(Exception, match='metric bad failed: ZeroDivisionError'): synth_learner(metrics=[bad]).fit(1, 0.1)


def test_validate_without_a_validation_set_is_an_error():
    data = _tl().split_none().label_from_lists([0.] * 4, [], label_cls=FloatList).databunch(bs=2)
    learn = Learner(data, nn.Linear(1, 1), loss_func=MSELossFlat(), silent=True)
    learn.fit(1, 0.1)   # training without a validation set is fine
    with pytest.raises(ValueError, match='no validation set'): learn.validate()


# ---------------------------------------------------------------- losses, metrics, crappify

def test_gram_matrix_names_the_shape_it_needs():
    with pytest.raises(ValueError, match=r'gram_matrix: .*\(3, 4, 4\)'): gram_matrix(torch.zeros(3, 4, 4))


def test_accuracy_refuses_predictions_and_targets_that_do_not_pair():
    with pytest.raises(ValueError, match='accuracy'): accuracy(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    assert float(accuracy(torch.tensor([[0., 1.], [1., 0.]]), torch.tensor([1, 1]))) == 0.5


def test_psnr_refuses_non_finite_images():
    with pytest.raises(ValueError, match='psnr: pred holds non-finite'):
        psnr(torch.full((3, 8, 8), float('nan')), torch.zeros(3, 8, 8))


def test_crappify_folder_refuses_a_source_without_images(tmp_path):
    (tmp_path/'e').mkdir(); (tmp_path/'e'/'notes.txt').write_text('x')
    with pytest.raises(ValueError, match='no image files'): crappify_folder(tmp_path/'e', tmp_path/'o')
    assert not (tmp_path/'o').exists()


# ---------------------------------------------------------------- the command line

def _export(tmp_path):
    for s in ('lr', 'hr'): _photos(tmp_path/s, 2)
    data = (ImageImageList.from_folder(tmp_path/'lr').split_by_idx([0]).label_from_func(lambda x: tmp_path/'hr'/x.name)
            .transform(([], []), tfm_y=True).databunch(bs=1))
    learn = unet_learner(data, models.resnet18, pretrained=False, loss_func=MSELossFlat(), silent=True)
    return learn.export(tmp_path/'gen.pth')


def test_restore_refuses_an_input_folder_without_images(tmp_path, capsys):
    model = _export(tmp_path)
    (tmp_path/'in').mkdir()
    assert main(['restore', str(tmp_path/'in'), str(tmp_path/'out'), '--model', str(model)]) == 2
    assert 'no image files under' in capsys.readouterr().err
    assert not (tmp_path/'out').exists()


def test_demo_names_an_output_that_is_a_file(tmp_path, capsys):
    (tmp_path/'o').write_text('keep')
    assert main(['demo', '--out', str(tmp_path/'o'), '--epochs', '1']) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err
    assert (tmp_path/'o').read_text() == 'keep'
