"""The Learner, its checkpoints and its exports against faulty inputs: nothing is half-done, nothing silently wrong,
and every error says what is wrong and with which file or argument."""
import errno, os, warnings

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import models

from restorelab.callback import Callback
from restorelab.core import atomic_save
from restorelab.data.core import TensorList, FloatList
from restorelab.learner import Learner
from restorelab.losses import MSELossFlat
from restorelab.test_utils import synth_learner, synth_dbunch, RegModel
from restorelab.vision.learner import load_learner


def _state(model): return {k: v.clone() for k, v in model.state_dict().items()}

def _same(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- silently wrong

def test_nan_learning_rate_is_refused_even_with_an_optimizer(tmp_path):
    learn = synth_learner(path=tmp_path)
    learn.fit(1, 0.1)                     # the learner now has an optimizer
    before = _state(learn.model)
    for lr in (float('nan'), float('inf'), -0.1, 0., slice(1e-3, float('nan'))):
        with pytest.raises(ValueError, match='learning rate'): learn.fit(1, lr)
        with pytest.raises(ValueError, match='learning rate'): learn.fit_one_cycle(1, lr)
    assert _same(before, _state(learn.model))


def test_nan_weight_decay_is_refused(tmp_path):
    with pytest.raises(ValueError, match='weight decay'): synth_learner(path=tmp_path).fit(1, 0.1, wd=float('nan'))


def test_nan_stop_says_when_the_weights_are_not_finite(tmp_path):
    class PoisonWeights(Callback):
        "After a step, break a weight (as a bad update would), so the next loss is NaN."
        def after_step(self, learn):
            if learn.iter == 1:
                with torch.no_grad(): learn.model.a.fill_(float('nan'))
    learn = synth_learner(path=tmp_path)
    with pytest.warns(RuntimeWarning, match='already hold NaN'): learn.fit(1, 0.1, callbacks=[PoisonWeights()])
    learn2 = synth_learner(path=tmp_path)
    class PoisonLoss(Callback):
        def after_pred(self, learn):
            if learn.training and learn.iter == 1: learn.pred = learn.pred * float('nan')
    with pytest.warns(RuntimeWarning, match='after the last finite step'): learn2.fit(1, 0.1, callbacks=[PoisonLoss()])


def test_export_refuses_non_finite_weights(tmp_path):
    from restorelab.data.vision import ImageImageList
    from restorelab.vision.learner import unet_learner
    from PIL import Image as PILImage
    for sub in ('lr', 'hr'):
        (tmp_path/sub).mkdir()
        for k in range(2): PILImage.new('RGB', (16, 16), (k * 50, 0, 0)).save(tmp_path/sub/f'{k}.png')
    data = (ImageImageList.from_folder(tmp_path/'lr').split_by_idx([0]).label_from_func(lambda x: tmp_path/'hr'/x.name)
            .transform(([], []), size=16, tfm_y=True).databunch(bs=1))
    learn = unet_learner(data, models.resnet18, pretrained=False, silent=True, loss_func=MSELossFlat())
    learn.export(tmp_path/'good.pth')
    good = (tmp_path/'good.pth').read_bytes()
    with torch.no_grad(): next(learn.model.parameters()).fill_(float('nan'))
    with pytest.raises(RuntimeError, match='non-finite'): learn.export(tmp_path/'good.pth')
    assert (tmp_path/'good.pth').read_bytes() == good
    # a tampered export with NaN weights is refused when loading too
    obj = torch.load(tmp_path/'good.pth', weights_only=True)
    k = next(iter(obj['state_dict']))
    obj['state_dict'][k] = torch.full_like(obj['state_dict'][k], float('nan'))
    torch.save(obj, tmp_path/'nan.pth')
    with pytest.raises(ValueError, match='nan.pth.*non-finite'): load_learner(tmp_path, 'nan.pth')


# ---------------------------------------------------------------- checkpoints: checked whole before anything changes

class Wider(nn.Module):
    def __init__(self, n=1):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.zeros(n)), nn.Parameter(torch.zeros(1))
    def forward(self, x): return x * self.a[:1] + self.b


def test_failed_load_leaves_the_model_unchanged(tmp_path):
    learn = synth_learner(path=tmp_path)
    learn.fit(1, 0.1); learn.save('m')
    other = Learner(synth_dbunch(), Wider(3), loss_func=MSELossFlat(), path=tmp_path, silent=True)
    with torch.no_grad(): other.model.b.fill_(7.)
    before = _state(other.model)
    with pytest.raises(RuntimeError, match=r'a \(1,\) in the file, \(3,\) in the model'): other.load('m')
    assert _same(before, _state(other.model))   # `b` fits, but nothing was copied


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    learn = synth_learner(path=tmp_path)
    (tmp_path/'models').mkdir()
    torch.save([torch.zeros(1)], tmp_path/'models'/'list.pth')
    with pytest.raises(TypeError, match='list.pth holds a list, not a state dict'): learn.load('list')
    torch.save({'a': 1.0, 'b': torch.zeros(1)}, tmp_path/'models'/'floats.pth')
    with pytest.raises(TypeError, match=r"floats.pth is not a state dict: \['a'\] are not tensors"): learn.load('floats')


def test_optimizer_state_of_another_optimizer(tmp_path):
    sgd = synth_learner(path=tmp_path, opt_func=lambda groups, lr: torch.optim.SGD(groups, lr=lr, momentum=0.9))
    sgd.fit(1, 0.1); sgd.save('sgd')
    adam = synth_learner(path=tmp_path)
    adam.fit(1, 0.01)
    before = _state(adam.model)
    with pytest.raises(RuntimeError, match='comes from another optimizer'): adam.load('sgd', with_opt=True)
    assert _same(before, _state(adam.model))
    with pytest.warns(UserWarning, match='kept a fresh optimizer'): adam.load('sgd')   # the default: weights only
    assert torch.equal(adam.model.a, sgd.model.a)
    adam.fit(1, 0.01)                                                                # and it trains on
    assert torch.isfinite(adam.model.a).all()


def test_full_disk_during_save_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    learn = synth_learner(path=tmp_path)
    learn.fit(1, 0.1); learn.save('m')
    before = (tmp_path/'models'/'m.pth').read_bytes()
    def full(obj, f, *a, **k):
        f.write(b'partial'); raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(OSError, match=r'save: could not write .*m\.pth: No space left on device'): learn.save('m')
    assert (tmp_path/'models'/'m.pth').read_bytes() == before
    assert [p.name for p in (tmp_path/'models').iterdir()] == ['m.pth']


def test_temp_file_of_a_killed_save_is_cleaned_by_the_next(tmp_path):
    "kill -9 during a save leaves `.m.pth.<pid>-xxxx.tmp` (hundreds of MB for a U-Net): the next save removes it."
    import subprocess, sys
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    stale = tmp_path/f'.m.pth.{int(dead.stdout)}-abc123.tmp'
    stale.write_bytes(b'x' * 1000)
    mine = tmp_path/f'.m.pth.{os.getpid()}-def456.tmp'; mine.write_bytes(b'y')   # this process's: not stale
    other = tmp_path/'.other.pth.1-abc.tmp'; other.write_bytes(b'z')               # another file's: not ours to judge
    atomic_save({'a': torch.zeros(1)}, tmp_path/'m.pth')
    assert not stale.exists() and mine.exists() and other.exists() and (tmp_path/'m.pth').is_file()


# ---------------------------------------------------------------- errors that name their cause

@pytest.mark.parametrize('epochs', [0, -1, 1.5, True])
def test_fit_epochs_must_be_a_positive_whole_number(tmp_path, epochs):
    with pytest.raises(ValueError, match='epochs must be a whole number'): synth_learner(path=tmp_path).fit(epochs, 0.1)


@pytest.mark.parametrize('bs', [0, -4, 2.5])
def test_batch_size_must_be_positive(bs):
    ll = TensorList(list(torch.randn(6, 1))).split_by_idx([5]).label_from_lists(np.zeros(5), np.zeros(1), label_cls=FloatList)
    with pytest.raises(ValueError, match='bs must be a whole number'): ll.databunch(bs=bs)


def test_split_without_training_items():
    il = TensorList(list(torch.randn(4, 1)))
    with pytest.raises(ValueError, match='leaves no training item'): il.split_by_rand_pct(1.0)
    with pytest.raises(ValueError, match='leaves no training item'): il.split_by_idx([0, 1, 2, 3])
    assert len(il.split_none().valid) == 0    # an empty validation set is allowed


def test_one_item_batch_into_batchnorm(tmp_path):
    xs = torch.randn(3, 4)
    data = TensorList(list(xs)).split_by_idx([2]).label_from_lists(np.zeros(2), np.zeros(1), label_cls=FloatList)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    for bs in (1, 3):   # bs 1; or bs 3 over 2 items: one batch of 2, fine -> only bs=1 fails here
        learn = Learner(data.databunch(bs=bs), model, loss_func=MSELossFlat(), path=tmp_path, silent=True)
        if bs == 1:
            with pytest.raises(ValueError, match='batch of one item'): learn.fit(1, 0.1)
        else: learn.fit(1, 0.1)
    one = TensorList(list(xs[:2])).split_by_idx([1]).label_from_lists(np.zeros(1), np.zeros(1), label_cls=FloatList)
    with pytest.raises(ValueError, match=r'training set \(1 items'):
        Learner(one.databunch(bs=4), model, loss_func=MSELossFlat(), path=tmp_path, silent=True).fit(1, 0.1)


def test_tampered_export(tmp_path):
    from restorelab.data.vision import ImageImageList
    from restorelab.vision.learner import unet_learner
    from PIL import Image as PILImage
    for sub in ('lr', 'hr'):
        (tmp_path/sub).mkdir()
        for k in range(2): PILImage.new('RGB', (16, 16), (k * 50, 0, 0)).save(tmp_path/sub/f'{k}.png')
    data = (ImageImageList.from_folder(tmp_path/'lr').split_by_idx([0]).label_from_func(lambda x: tmp_path/'hr'/x.name)
            .transform(([], []), size=16, tfm_y=True).databunch(bs=1).normalize(([.5, .5, .5], [.2, .2, .2])))
    unet_learner(data, models.resnet18, pretrained=False, silent=True, loss_func=MSELossFlat()).export(tmp_path/'ok.pth')
    obj = torch.load(tmp_path/'ok.pth', weights_only=True)
    for name, change, says in [
        ('callable.pth', lambda o: o['data'].update(x_cls='restorelab.core:parallel'), 'not one of the item lists'),
        ('module.pth', lambda o: o['data'].update(y_cls='os:system'), 'not one of the item lists'),
        ('stats.pth', lambda o: o['data']['norm'].update(mean=[.5, .5]), 'normalisation statistics'),
        ('kind.pth', lambda o: o['model'].update(kind='evil'), "no model builder 'evil'")]:
        bad = {**obj, 'data': {**obj['data'], 'norm': dict(obj['data']['norm'])}, 'model': dict(obj['model'])}
        change(bad)
        torch.save(bad, tmp_path/name)
        with pytest.raises(ValueError, match=says) as err: load_learner(tmp_path, name)
        assert name in str(err.value)


def test_grey_images_into_an_rgb_encoder(tmp_path):
    from restorelab.data.vision import ImageList, ImageImageList
    from restorelab.vision.learner import cnn_learner, unet_learner
    from PIL import Image as PILImage
    for k in range(4): PILImage.new('L', (16, 16), k * 30).save(tmp_path/f'{k}.png')
    cls = (ImageList.from_folder(tmp_path, convert_mode='L').split_by_idx([0]).label_from_func(lambda o: str(int(o.stem) % 2))
           .transform(size=16).databunch(bs=2))
    with pytest.raises(ValueError, match=r"cnn_learner: the images have 1 channel\(s\) \(convert_mode='L'\) but the body takes 3"):
        cnn_learner(cls, models.resnet18, pretrained=False)
    seg = (ImageImageList.from_folder(tmp_path, convert_mode='L').split_by_idx([0]).label_from_func(lambda o: o)
           .transform(size=16, tfm_y=True).databunch(bs=2))
    with pytest.raises(ValueError, match="unet_learner: the images have 1 channel"):
        unet_learner(seg, models.resnet18, pretrained=False, loss_func=MSELossFlat())
