"""GANLearner's semantics, each with a test that fails without it: the idle model gets no gradient and its optimizer
does not step; each side keeps its own optimizer state; GANDiscriminativeLR multiplies the critic's learning rate
only in its batches, on top of the one-cycle schedule; switch_eval; WGAN clipping; fit ends in generator mode;
save/load hold both models, both optimizers and the phase in one weights-only file; errors in a switcher name it."""
from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch import nn
from torchvision import models

from restorelab.callback import Callback, CallbackError
from restorelab.data.vision import ImageImageList
from restorelab.losses import AdaptiveLoss, MSELossFlat
from restorelab.vision.gan import (GANLearner, GANItemList, FixedGANSwitcher, AdaptiveGANSwitcher,
                                   GANDiscriminativeLR, noop)
from restorelab.vision.learner import unet_learner, load_learner
from restorelab.models.gan import basic_generator, basic_critic


def _pairs(path, n=8, size=16):
    rng = np.random.default_rng(0)
    for sub in ('lr', 'hr'):
        (path/sub).mkdir(parents=True, exist_ok=True)
        for i in range(n): PILImage.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(path/sub/f'{i}.png')
    return (ImageImageList.from_folder(path/'lr').split_by_idx([0, 1]).label_from_func(lambda x: path/'hr'/x.name)
            .transform(([], []), tfm_y=True).databunch(bs=2))

def _critic(bn=True):   # dropout (and BatchNorm when bn), so that eval mode is visible
    return nn.Sequential(nn.Conv2d(3, 8, 4, stride=2, padding=1), nn.BatchNorm2d(8) if bn else nn.Identity(),
                         nn.LeakyReLU(0.2), nn.Dropout(0.5), nn.Conv2d(8, 1, 4, stride=2, padding=1), nn.Flatten())

def _gan(path, switcher=None, critic=None, **kwargs):
    data = _pairs(path)
    gen = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    from restorelab.vision.gan import gan_loss_from_func
    losses = gan_loss_from_func(MSELossFlat(), AdaptiveLoss(nn.BCEWithLogitsLoss()), (1., 10.))
    kwargs = {'silent': True, 'show_img': False, **kwargs}
    return GANLearner(data, gen, critic or _critic(), *losses, switcher=switcher or FixedGANSwitcher(n_crit=1, n_gen=1),
                      **kwargs)

def _params(m): return {k: v.detach().clone() for k, v in m.named_parameters()}

def _changed(before, m): return {k for k, v in m.named_parameters() if not torch.equal(before[k], v)}


class Probe(Callback):
    "Per training batch: the phase, which parameters moved, gradients, train/eval modes and learning rates."
    order = 0   # after GANTrainer (-30), the scheduler (-20) and GANDiscriminativeLR (-10); before the switchers
    def __init__(self): self.rows = []
    def before_batch(self, learn):
        if not learn.training: return
        gan = learn.model
        self._before = _params(gan.generator), _params(gan.critic), _stats(gan.critic)
        self._row = dict(gen_mode=learn.gan_trainer.gen_mode, gen_training=gan.generator.training,
                         crit_training=gan.critic.training, lr_gen=learn.opt.opt_gen.lrs[0],
                         lr_crit=learn.opt.opt_crit.lrs[0])
    def after_backward(self, learn):
        if learn.training:
            gan = learn.model
            self._row['gen_grads'] = any(p.grad is not None for p in gan.generator.parameters())
            self._row['crit_grads'] = any(p.grad is not None for p in gan.critic.parameters())
    def after_step(self, learn):
        if learn.training:
            gan = learn.model
            self._row['gen_moved'] = bool(_changed(self._before[0], gan.generator))
            self._row['crit_moved'] = bool(_changed(self._before[1], gan.critic))
            self._row['crit_stats_moved'] = not torch.equal(self._before[2], _stats(gan.critic))
            self.rows.append(self._row)

def _stats(critic): return critic[1].running_mean.clone() if isinstance(critic[1], nn.BatchNorm2d) else torch.zeros(0)


@pytest.mark.parametrize('bn', [True, False], ids=['two_critic_passes', 'one_critic_pass'])
def test_the_idle_model_gets_no_gradient_and_is_not_stepped(tmp_path, bn):
    learn, probe = _gan(tmp_path, critic=_critic(bn)), Probe()
    assert learn.gan_trainer.critic_one_pass() == (not bn)   # batch norm: real and fake images in separate passes
    learn.fit(2, 1e-2, callbacks=[probe])
    rows = probe.rows
    assert {r['gen_mode'] for r in rows} == {True, False}
    for r in rows:
        if r['gen_mode']: assert r['gen_grads'] and r['gen_moved'] and not r['crit_grads'] and not r['crit_moved']
        else: assert r['crit_grads'] and r['crit_moved'] and not r['gen_grads'] and not r['gen_moved']


def test_fixed_switcher_alternates_as_asked(tmp_path):
    learn, probe = _gan(tmp_path, switcher=FixedGANSwitcher(n_crit=2, n_gen=1)), Probe()
    learn.fit(3, 1e-3, callbacks=[probe])   # 3 batches per epoch
    phases = ''.join('G' if r['gen_mode'] else 'C' for r in probe.rows)
    assert phases == 'CCGCCGCCG', phases


def test_adaptive_switcher_waits_for_the_threshold(tmp_path):
    learn, probe = _gan(tmp_path, switcher=AdaptiveGANSwitcher(critic_thresh=-1.)), Probe()   # never below: no switch
    learn.fit(2, 1e-3, callbacks=[probe])
    assert not any(r['gen_mode'] for r in probe.rows)
    learn, probe = _gan(tmp_path/'b', switcher=AdaptiveGANSwitcher(gen_thresh=None, critic_thresh=1e9)), Probe()
    learn.fit(1, 1e-3, callbacks=[probe])
    assert [r['gen_mode'] for r in probe.rows] == [False, True, False]   # always below: a switch after every batch


def test_each_side_keeps_its_own_optimizer_state(tmp_path):
    learn, probe = _gan(tmp_path, switcher=FixedGANSwitcher(n_crit=2, n_gen=1)), Probe()
    learn.fit(2, 1e-3, callbacks=[probe])
    n_gen = sum(r['gen_mode'] for r in probe.rows); n_crit = len(probe.rows) - n_gen
    gen_ids = {id(p) for p in learn.model.generator.parameters()}
    crit_ids = {id(p) for p in learn.model.critic.parameters()}
    opt_gen, opt_crit = learn.opt.opt_gen.opt, learn.opt.opt_crit.opt
    assert {id(p) for p in opt_gen.state} == gen_ids and {id(p) for p in opt_crit.state} == crit_ids
    # Adam's step count: one per batch of its own phase, kept across every switch
    assert {int(s['step']) for s in opt_gen.state.values()} == {n_gen}
    assert {int(s['step']) for s in opt_crit.state.values()} == {n_crit}


def test_discriminative_lr_multiplies_the_critic_only_in_its_batches(tmp_path):
    learn, probe = _gan(tmp_path), Probe()
    learn.callback_fns.append(partial(GANDiscriminativeLR, mult_lr=5.))   # as the lesson does
    learn.fit_one_cycle(3, 1e-3, callbacks=[probe])
    lrs = [r['lr_gen'] for r in probe.rows]
    assert len(set(np.round(lrs, 12))) > 3   # the one-cycle schedule moves the learning rate ...
    for r in probe.rows:                     # ... and the critic gets 5x its value in critic batches only
        assert r['lr_crit'] == pytest.approx(r['lr_gen'] * (1 if r['gen_mode'] else 5.))
    assert learn.opt.opt_crit.lrs == learn.opt.opt_gen.lrs   # restored after the last critic batch


@pytest.mark.parametrize('switch_eval', [True, False])
def test_switch_eval_puts_the_idle_model_in_eval_mode(tmp_path, switch_eval):
    learn, probe = _gan(tmp_path, switch_eval=switch_eval), Probe()
    learn.fit(2, 1e-3, callbacks=[probe])
    for r in probe.rows:
        idle_training = r['crit_training'] if r['gen_mode'] else r['gen_training']
        assert idle_training == (not switch_eval)
        if r['gen_mode']: assert r['crit_stats_moved'] == (not switch_eval)   # BatchNorm stats of the idle critic


def test_wgan_clips_every_critic_weight(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path/'img').mkdir()
    for i in range(8): PILImage.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(tmp_path/'img'/f'{i}.png')
    data = (GANItemList.from_folder(tmp_path/'img', noise_sz=10).split_none().label_from_func(noop)
            .transform(([], []), size=16, tfm_y=True).databunch(bs=2)
            .normalize(([0.5] * 3, [0.5] * 3), do_x=False, do_y=True))
    learn = GANLearner.wgan(data, basic_generator(16, 3, noise_sz=10, n_features=8),
                            basic_critic(16, 3, n_features=8), switch_eval=False, silent=True, show_img=False, wd=0.)
    with torch.no_grad():
        for p in learn.model.critic.parameters(): p.mul_(100)   # far outside the clip range
    learn.fit(2, 2e-4)   # 8 batches: 5 critic, 1 generator, 2 critic
    assert all(float(p.detach().abs().max()) <= 0.01 + 1e-7 for p in learn.model.critic.parameters())
    names = learn.recorder.names
    assert 'gen_loss' in names and 'disc_loss' in names          # the columns exist without a validation set
    row = learn.recorder.values[-1]
    assert row[names.index('disc_loss')] is not None and row[names.index('valid_loss')] is None
    assert set(learn.recorder.loss_parts) == {'gen_loss', 'disc_loss'}


def test_fit_ends_in_generator_mode_and_export_serves_the_generator(tmp_path):
    data = _pairs(tmp_path, size=32)
    learn_gen = unet_learner(data, models.resnet18, pretrained=False, loss_func=MSELossFlat(), silent=True)
    learn_crit_model = _critic()
    from restorelab.learner import Learner
    learn_crit = Learner(data, learn_crit_model, loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), silent=True)
    learn = GANLearner.from_learners(learn_gen, learn_crit, weights_gen=(1., 50.), show_img=False, silent=True)
    learn.fit(1, 1e-4)
    assert learn.model.gen_mode and learn.gan_trainer.gen_mode
    x = data.valid_ds[0][0]
    assert learn.predict(x)[2].shape == (3, 32, 32)   # the generator's output, not critic logits
    fn = learn.export(tmp_path/'gen.pth')
    inf = load_learner(tmp_path, 'gen.pth')
    with torch.no_grad():
        learn.model.eval()
        xb = data.one_item(x)
        torch.testing.assert_close(inf.model(xb.cpu()), learn.model.generator(xb))


def test_save_and_load_hold_both_models_both_optimizers_and_the_phase(tmp_path):
    learn = _gan(tmp_path, switcher=FixedGANSwitcher(n_crit=2, n_gen=1))
    learn.fit(2, 1e-3)
    learn.gan_trainer.set_phase(False, 1)
    fn = learn.save('gan', return_path=True)
    raw = torch.load(fn, weights_only=True)   # plain tensors and numbers: no pickled code
    assert set(raw['opt']) == {'gen', 'crit', 'phase'}
    other = _gan(tmp_path/'o')
    other.load(fn)
    for a, b in zip(learn.model.state_dict().values(), other.model.state_dict().values()): assert torch.equal(a, b)
    for side in ('opt_gen', 'opt_crit'):
        sa, sb = getattr(learn.opt, side).opt.state_dict()['state'], getattr(other.opt, side).opt.state_dict()['state']
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k]['exp_avg'], sb[k]['exp_avg']) for k in sa)
    assert (other.gan_trainer.gen_mode, other.gan_trainer.n_iter) == (False, 1) and not other.model.gen_mode


def test_loading_a_plain_checkpoint_into_a_gan_is_refused(tmp_path):
    learn = _gan(tmp_path)
    learn.fit(1, 1e-3)
    from restorelab.learner import Learner
    plain = Learner(learn.data, learn.model, loss_func=MSELossFlat(), path=tmp_path, silent=True)
    plain.create_opt(plain.lr_range(1e-3))
    fn = plain.save('plain', return_path=True)
    with pytest.raises(RuntimeError, match="not the state of a GANLearner's optimizers"): learn.load(fn, with_opt=True)


def test_generator_loss_gets_output_then_target(tmp_path):
    seen = []
    def gen_loss(output, target):
        if torch.is_grad_enabled(): seen.append((output.requires_grad, target.requires_grad))   # (not in validation)
        return (output - target).abs().mean()
    from restorelab.vision.gan import gan_loss_from_func
    data = _pairs(tmp_path)
    losses = gan_loss_from_func(gen_loss, AdaptiveLoss(nn.BCEWithLogitsLoss()))
    learn = GANLearner(data, nn.Conv2d(3, 3, 3, padding=1), _critic(), *losses, switcher=FixedGANSwitcher(1, 1),
                       silent=True, show_img=False)
    learn.fit(1, 1e-3)
    assert seen and all(o and not t for o, t in seen)   # the generator's output has a gradient, the target none


def test_an_error_in_a_switcher_names_it(tmp_path):
    class BadSwitcher(FixedGANSwitcher):
        def after_batch(self, learn): raise ValueError('no phase for you')
    learn = _gan(tmp_path, switcher=BadSwitcher())
    with pytest.raises(CallbackError, match=r'BadSwitcher\.after_batch failed: ValueError: no phase for you'):
        learn.fit(1, 1e-3)


@pytest.mark.filterwarnings('ignore:to_bf16')   # emulated on CPUs without native bfloat16: slow, still right
def test_a_gan_trains_in_bfloat16_and_channels_last(tmp_path):
    learn, probe = _gan(tmp_path), Probe()
    learn.to_bf16().to_channels_last()
    seen = []   # (gen_mode, memory format of the generator's input): the critic phase runs the generator in the loss
    gan = learn.model
    hook = gan.generator.register_forward_pre_hook(
        lambda m, args: seen.append((gan.gen_mode, args[0].ndim < 4 or args[0].is_contiguous(memory_format=torch.channels_last))))
    learn.fit(1, 1e-3, callbacks=[probe])
    hook.remove()
    assert {r['gen_mode'] for r in probe.rows} == {True, False}
    assert {m for m, _ in seen} == {True, False} and all(cl for _, cl in seen), seen
    assert all(torch.isfinite(p).all() for p in learn.model.parameters())
    gen_losses = learn.recorder.loss_parts['gen_loss'][1]
    assert gen_losses and all(np.isfinite(gen_losses))
