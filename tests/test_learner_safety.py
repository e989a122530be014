"Failure behaviour of the Learner: NaN losses, Ctrl-C, callback errors, checkpoints that are never half-written."
import os
import warnings

import pytest
import torch
from torch import nn

from restorelab.callback import Callback, CallbackError, CancelBatchException, CancelEpochException
from restorelab.learner import Learner
from restorelab.callback import SaveModelCallback
from restorelab.test_utils import synth_learner


class PoisonAt(Callback):
    "Make the loss NaN at (epoch, batch)."
    def __init__(self, epoch, batch): self.at = (epoch, batch)
    def after_pred(self, learn):
        if learn.training and (learn.epoch, learn.iter) == self.at: learn.pred = learn.pred * float('nan')


def test_nan_stops_training_and_names_epoch_batch(tmp_path):
    learn = synth_learner(path=tmp_path)
    with pytest.warns(RuntimeWarning, match='epoch 1, batch 2'):
        learn.fit(4, 0.1, callbacks=[PoisonAt(1, 2)])
    assert learn.nan_stop == (1, 2)
    assert len(learn.recorder.values) == 1
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())


def test_nan_never_overwrites_saved_model(tmp_path):
    learn = synth_learner(path=tmp_path)
    save = SaveModelCallback(every='epoch', name='ckpt')
    with pytest.warns(RuntimeWarning):
        learn.fit(3, 0.1, callbacks=[save, PoisonAt(1, 0)])
    files = sorted(p.name for p in (tmp_path/'models').iterdir())
    assert files == ['ckpt_0.pth'], files   # epoch 1 never finished: nothing saved after the NaN


def test_save_refuses_non_finite_model_keeping_old_file(tmp_path):
    learn = synth_learner(path=tmp_path)
    learn.fit(1, 0.1)
    learn.save('good')
    before = (tmp_path/'models'/'good.pth').read_bytes()
    with torch.no_grad(): learn.model.a.fill_(float('nan'))
    with pytest.raises(RuntimeError, match='non-finite'): learn.save('good')
    assert (tmp_path/'models'/'good.pth').read_bytes() == before
    assert [p.name for p in (tmp_path/'models').iterdir()] == ['good.pth']   # no temp file left


def test_interrupted_write_leaves_old_checkpoint(tmp_path, monkeypatch):
    learn = synth_learner(path=tmp_path)
    learn.fit(1, 0.1)
    learn.save('m')
    before = (tmp_path/'models'/'m.pth').read_bytes()
    real_save = torch.save
    def crash(obj, f, *a, **k):
        f.write(b'half a checkpoint'); raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', crash)
    with pytest.raises(OSError, match='disk full'): learn.save('m')
    monkeypatch.setattr(torch, 'save', real_save)
    assert (tmp_path/'models'/'m.pth').read_bytes() == before
    assert [p.name for p in (tmp_path/'models').iterdir()] == ['m.pth']


def test_keyboard_interrupt_keeps_learner_usable():
    class CtrlC(Callback):
        def before_batch(self, learn):
            if learn.training and learn.epoch == 1 and learn.iter == 3: raise KeyboardInterrupt
    learn = synth_learner()
    with pytest.raises(KeyboardInterrupt): learn.fit(3, 0.1, callbacks=[CtrlC()])
    assert len(learn.recorder.values) == 1 and len(learn.recorder.losses) == 13
    assert learn.cbs == [] and not learn.training
    before = learn.validate()[0]
    learn.fit(2, 0.1)
    assert learn.validate()[0] < before


def test_callback_error_names_callback_and_event():
    class Bad(Callback):
        def before_validate(self, learn): raise KeyError('missing')
    learn = synth_learner()
    with pytest.raises(CallbackError, match=r'Bad\.before_validate failed: KeyError') as e: learn.fit(1, callbacks=[Bad()])
    assert isinstance(e.value.__cause__, KeyError)


def test_cancel_exceptions():
    class SkipOdd(Callback):
        def before_batch(self, learn):
            if learn.training and learn.iter % 2: raise CancelBatchException
    class OneEpochOnlyTrain(Callback):
        def before_validate(self, learn): raise CancelEpochException
    learn = synth_learner()
    w0 = learn.model.a.detach().clone()
    learn.fit(1, 0.1, callbacks=[SkipOdd(), OneEpochOnlyTrain()])
    assert len(learn.recorder.losses) == 5            # only the 5 even batches of 10 reached the loss
    assert learn.recorder.val_losses == []            # validation cancelled
    assert not torch.equal(w0, learn.model.a.detach())


def test_load_accepts_bare_and_dataparallel_state_dicts(tmp_path):
    learn = synth_learner(path=tmp_path)
    learn.fit(1, 0.1)
    sd = learn.model.state_dict()
    (tmp_path/'models').mkdir(exist_ok=True)
    torch.save(sd, tmp_path/'models'/'bare.pth')
    torch.save(nn.DataParallel(learn.model).state_dict(), tmp_path/'models'/'dp.pth')
    for name in ('bare', 'dp'):
        l2 = synth_learner(path=tmp_path).load(name)
        assert torch.equal(l2.model.a, learn.model.a) and torch.equal(l2.model.b, learn.model.b)


def test_save_unwraps_dataparallel(tmp_path):
    learn = synth_learner(path=tmp_path)
    learn.model = nn.DataParallel(learn.model)
    learn.save('dp')
    keys = torch.load(tmp_path/'models'/'dp.pth', weights_only=True)['model'].keys()
    assert sorted(keys) == ['a', 'b']


def test_load_mismatch_names_keys_and_refuses_pickles(tmp_path):
    learn = synth_learner(path=tmp_path)
    (tmp_path/'models').mkdir()
    torch.save({'model': {'a': torch.zeros(1), 'zzz': torch.zeros(1)}}, tmp_path/'models'/'wrong.pth')
    with pytest.raises(RuntimeError, match=r"missing keys \['b'\], unexpected keys \['zzz'\]"): learn.load('wrong')
    # a checkpoint carrying pickled code is refused (weights_only=True)
    torch.save({'model': learn.model}, tmp_path/'models'/'pickled.pth')
    with pytest.raises(RuntimeError, match='cannot read'): learn.load('pickled')
    with pytest.raises(FileNotFoundError, match='no model file'): learn.load('nope')


def test_save_load_with_optimizer_resumes_identically(tmp_path):
    torch.manual_seed(0)
    learn = synth_learner(path=tmp_path)
    learn.fit(1, 0.05)
    learn.save('resume')
    l2 = synth_learner(path=tmp_path).load('resume')
    assert l2.opt is not None
    s1, s2 = learn.opt.state_dict()['state'], l2.opt.state_dict()['state']
    assert s1.keys() == s2.keys()
    for k in s1:
        for name in ('exp_avg', 'exp_avg_sq'): assert torch.equal(s1[k][name], s2[k][name])


def test_freeze_trains_only_last_group():
    learn = synth_learner()
    model = nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    learn = Learner(learn.data, model, loss_func=nn.MSELoss(), layer_groups=[model[:2], model[2:]], silent=True)
    learn.freeze()
    w0, bn0, w2 = model[0].weight.detach().clone(), model[1].weight.detach().clone(), model[2].weight.detach().clone()
    learn.fit(1, 0.1)
    assert torch.equal(w0, model[0].weight)                      # frozen
    assert not torch.equal(bn0, model[1].weight)                 # BN stays trainable (train_bn)
    assert not torch.equal(w2, model[2].weight)
    learn.unfreeze(); learn.fit(1, 0.1)
    assert not torch.equal(w0, model[0].weight)


def test_discriminative_lrs_follow_slice():
    model = nn.Sequential(nn.Linear(1, 4), nn.Linear(4, 4), nn.Linear(4, 1))
    learn = Learner(synth_learner().data, model, loss_func=nn.MSELoss(), layer_groups=[model[0], model[1], model[2]], silent=True)
    learn.fit_one_cycle(1, slice(1e-5, 1e-3), pct_start=0.5)
    lrs = learn.opt.lrs
    assert lrs[0] < lrs[1] < lrs[2]
    assert abs(lrs[1] / lrs[0] - 10) < 1e-6 and abs(lrs[2] / lrs[1] - 10) < 1e-6


def test_validate_from_inside_a_fit_keeps_the_loop_state():
    class MidEpochValidate(Callback):
        def after_batch(self, learn):
            if learn.training and learn.iter == 2:
                self.res = learn.validate()
                assert learn.training and learn.model.training and learn.iter == 2
    cb = MidEpochValidate()
    learn = synth_learner()
    learn.fit(1, 0.1, callbacks=[cb])
    assert len(cb.res) == 1 and len(learn.recorder.losses) == 10 and len(learn.recorder.val_losses) == 1


def test_fit_trains_inside_no_grad():
    learn = synth_learner()
    before = learn.validate()[0]
    with torch.no_grad(): learn.fit(2, 0.1)
    assert learn.validate()[0] < before / 5


def test_save_load_absolute_path(tmp_path):
    learn = synth_learner(path=tmp_path/'here')
    learn.fit(1, 0.1)
    fn = learn.save(tmp_path/'elsewhere'/'weights', return_path=True)
    assert fn == tmp_path/'elsewhere'/'weights.pth' and fn.exists()
    l2 = synth_learner(path=tmp_path/'other').load(tmp_path/'elsewhere'/'weights')
    assert torch.equal(l2.model.a, learn.model.a)
