"""Lesson 7's perceptual loss in use: the lesson's own `FeatureLoss` class (as written) agrees with restorelab's,
`LossMetrics` reports the parts in the epoch table with the lesson's `unet_learner` call, and a hundred fits leave no
hook behind and no memory growth."""
import gc, warnings

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from PIL import Image as PILImage
from torchvision import models
from torchvision.models import vgg16_bn

import restorelab.feature_loss as rl
from restorelab.hooks import children, requires_grad, hook_outputs, Hook
from restorelab.callback import Callback
from restorelab.recorder import LossMetrics, LossPart
from restorelab.data.vision import ImageImageList
from restorelab.data.bunch import imagenet_stats
from restorelab.learner import Learner
from restorelab.layers import NormType
from restorelab.vision.learner import unet_learner


# ---------------------------------------------------------------------------------------------------------------
# The lesson's cells, as written. Two adaptations: `vgg16_bn(True)` becomes `vgg16_bn(weights=None)` because no
# pretrained weights are available offline, and `.cuda()` is dropped (these tests run on the CPU). They are in the
# `lesson_vgg` fixture below.

def gram_matrix(x):
    n,c,h,w = x.size()
    x = x.view(n, c, -1)
    return (x @ x.transpose(1,2))/(c*h*w)

base_loss = F.l1_loss

class FeatureLoss(nn.Module):
    def __init__(self, m_feat, layer_ids, layer_wgts):
        super().__init__()
        self.m_feat = m_feat
        self.loss_features = [self.m_feat[i] for i in layer_ids]
        self.hooks = hook_outputs(self.loss_features, detach=False)
        self.wgts = layer_wgts
        self.metric_names = ['pixel',] + [f'feat_{i}' for i in range(len(layer_ids))
              ] + [f'gram_{i}' for i in range(len(layer_ids))]

    def make_features(self, x, clone=False):
        self.m_feat(x)
        return [(o.clone() if clone else o) for o in self.hooks.stored]

    def forward(self, input, target):
        out_feat = self.make_features(target, clone=True)
        in_feat = self.make_features(input)
        self.feat_losses = [base_loss(input,target)]
        self.feat_losses += [base_loss(f_in, f_out)*w
                             for f_in, f_out, w in zip(in_feat, out_feat, self.wgts)]
        self.feat_losses += [base_loss(gram_matrix(f_in), gram_matrix(f_out))*w**2 * 5e3
                             for f_in, f_out, w in zip(in_feat, out_feat, self.wgts)]
        self.metrics = dict(zip(self.metric_names, self.feat_losses))
        return sum(self.feat_losses)

    def __del__(self): self.hooks.remove()

# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def lesson_vgg():
    vgg_m = vgg16_bn(weights=None).features.eval()   # lesson: vgg16_bn(True).features.cuda().eval()
    requires_grad(vgg_m, False)
    blocks = [i-1 for i,o in enumerate(children(vgg_m)) if isinstance(o,nn.MaxPool2d)]
    return vgg_m, blocks


def _hooks_on(m: nn.Module) -> int: return sum(len(mod._forward_hooks) for mod in m.modules())


def _n_hook_objects() -> int:
    gc.collect()
    return sum(type(o) is Hook for o in gc.get_objects())


def test_lesson_class_agrees_with_restorelab(lesson_vgg):
    vgg_m, blocks = lesson_vgg
    vgg_m.cpu()   # the lesson's class never moves it, and other tests may have trained on a GPU
    assert blocks == [5, 12, 22, 32, 42]
    feat_loss = FeatureLoss(vgg_m, blocks[2:5], [5,15,2])
    ours = rl.FeatureLoss(vgg_m, blocks[2:5], [5, 15, 2])
    assert ours.metric_names == feat_loss.metric_names
    torch.manual_seed(0)
    target = torch.randn(2, 3, 32, 32)
    x1, x2 = (torch.randn(2, 3, 32, 32).requires_grad_() for _ in range(2))
    x2.data.copy_(x1.data)
    v1, v2 = feat_loss(x1, target), ours(x2, target)
    assert torch.allclose(v1, v2, rtol=1e-5)
    for name in feat_loss.metric_names: assert torch.allclose(feat_loss.metrics[name], ours.metrics[name], rtol=1e-5)
    v1.backward(); v2.backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-4, atol=1e-8)
    assert torch.allclose(gram_matrix(target), rl.gram_matrix(target))
    # the lesson's hooks stay on the VGG between calls, until `__del__` runs; restorelab's are gone after each call
    assert _hooks_on(vgg_m) == 3
    del feat_loss, v1
    gc.collect()
    assert _hooks_on(vgg_m) == 0


def _image_pairs(root, n: int, size: int = 16):
    "`n` pairs of `size`² RGB images: input and a brighter, flipped target."
    lr, hr = root/'lr', root/'hr'
    lr.mkdir(); hr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 200, (size, size, 3), dtype=np.uint8)
        PILImage.fromarray(arr).save(lr/f'{i}.png')
        PILImage.fromarray((arr[:, ::-1] + 40).astype(np.uint8)).save(hr/f'{i}.png')
    return lr, hr


def _image_data(root, n: int = 9, size: int = 16, valid_pct: float = 0.5, bs: int = 2, device=None):
    lr, hr = _image_pairs(root, n, size)
    return (ImageImageList.from_folder(lr).split_by_rand_pct(valid_pct, seed=42).label_from_func(lambda x: hr/x.name)
            .databunch(bs=bs, device=device).normalize(imagenet_stats, do_y=True))


def test_loss_metrics_columns_are_validation_averages(tmp_path, lesson_vgg):
    vgg_m, blocks = lesson_vgg
    data = _image_data(tmp_path, n=7)
    assert len(data.valid_ds) % 2 == 1   # a last batch of one: the averages must weight by batch size
    feat_loss = rl.FeatureLoss(vgg_m, blocks[2:5], [5, 15, 2])
    learn = Learner(data, nn.Conv2d(3, 3, 3, padding=1), loss_func=feat_loss, callback_fns=LossMetrics, silent=True)
    learn.fit(1, 1e-3)
    rec = learn.recorder
    assert rec.names == ['epoch', 'train_loss', 'valid_loss', 'pixel', 'feat_0', 'feat_1', 'feat_2',
                         'gram_0', 'gram_1', 'gram_2', 'time']
    assert learn.metrics == []
    learn.model.eval()
    totals, n = np.zeros(7), 0
    with torch.no_grad():
        for xb, yb in data.valid_dl:
            feat_loss(learn.model(xb), yb)
            totals += np.array([float(feat_loss.metrics[k]) for k in feat_loss.metric_names]) * len(xb); n += len(xb)
    assert n == len(data.valid_ds)
    np.testing.assert_allclose(rec.metrics[-1], totals / n, rtol=1e-4)
    np.testing.assert_allclose(sum(rec.metrics[-1]), rec.val_losses[-1], rtol=1e-5)
    # `LossPart` metrics give the same numbers from `validate`
    vals = Learner(data, learn.model, loss_func=feat_loss, metrics=[LossPart(k) for k in feat_loss.metric_names],
                   silent=True).validate()
    np.testing.assert_allclose(vals[1:], rec.metrics[-1], rtol=1e-4)
    # with `LossMetrics` among its callbacks, the learner's own `validate` reports the parts too, as the table does
    vals = learn.validate()
    assert len(vals) == 1 + len(feat_loss.metric_names)
    np.testing.assert_allclose(vals, [rec.val_losses[-1], *rec.metrics[-1]], rtol=1e-4)
    # ... and a validate inside a fit (where LossMetrics has added the parts to the metrics) does not repeat them
    class ValidateAtEnd(Callback):
        def after_fit(self, learn): self.vals = learn.validate()
    cb = ValidateAtEnd()
    cb.order = -30   # before LossMetrics (-20) restores the user's metrics
    learn.fit(1, 1e-3, callbacks=[cb])
    assert len(cb.vals) == 1 + len(feat_loss.metric_names)
    assert _hooks_on(vgg_m) == 0


def test_lesson_unet_learner_call(tmp_path, lesson_vgg):
    "The lesson's `unet_learner(..., loss_func=feat_loss, callback_fns=LossMetrics, blur=True, norm_type=Weight)`."
    vgg_m, blocks = lesson_vgg
    data = _image_data(tmp_path, n=6, size=32, valid_pct=0.34)
    data.c = 3
    feat_loss = rl.FeatureLoss(vgg_m, blocks[2:5], [5, 15, 2])
    learn = unet_learner(data, models.resnet18, pretrained=False, wd=1e-3, loss_func=feat_loss,
                         callback_fns=LossMetrics, blur=True, norm_type=NormType.Weight, silent=True)
    learn.fit_one_cycle(1, slice(1e-3), pct_start=0.9)
    assert learn.recorder.metrics_names == feat_loss.metric_names
    assert all(np.isfinite(v) for v in learn.recorder.metrics[-1])
    assert _hooks_on(vgg_m) == 0 and _hooks_on(learn.model) == 0


# lesson 7's FeatureLoss, lesson 14's (pixels / 100, no Gram terms) and lesson 14's style-transfer CombinedLoss
LOSSES = {'feature-lesson7': lambda m: rl.FeatureLoss(m, (5, 12), (5, 15)),
          'feature-lesson14': lambda m: rl.FeatureLoss(m, (5, 12), (0.2, 0.7), pixel_wgt=0.01, gram_wgt=0),
          'combined-lesson14': lambda m: rl.CombinedLoss(m, (5, 12), torch.randn(3, 8, 8), 1e4, (0.025, 0.275), ct_idx=1)}

@pytest.mark.parametrize('make_loss', LOSSES.values(), ids=LOSSES.keys())
def test_hundred_fits_leave_no_hooks_and_no_growth(tmp_path, make_loss):
    "Each fit gets a new loss on a shared VGG (re-running the lessons' cells); nothing accumulates."
    psutil = pytest.importorskip('psutil')
    vgg_m = rl.vgg16_bn_features()[:13]         # up to the second feature layer: quicker, the same kind of hooks
    data = _image_data(tmp_path, n=4, size=8)    # one training and one validation batch of 2
    proc = psutil.Process()

    def one_fit():
        feat_loss = make_loss(vgg_m)
        learn = Learner(data, nn.Conv2d(3, 3, 3, padding=1), loss_func=feat_loss, callback_fns=LossMetrics, silent=True)
        learn.fit(1, 1e-3)
        assert _hooks_on(vgg_m) == 0
        assert learn.recorder.metrics_names == feat_loss.metric_names

    for _ in range(5): one_fit()   # warm up allocator caches and lazy imports
    n_hooks, rss = _n_hook_objects(), proc.memory_info().rss
    for _ in range(100): one_fit()
    assert _n_hook_objects() == n_hooks == 0
    growth = (proc.memory_info().rss - rss) / 2**20
    assert growth < 30, f'RSS grew by {growth:.1f} MB over 100 fits'


def test_pretrained_reads_the_torch_home_cache(tmp_path, monkeypatch):
    "`FeatureLoss(pretrained=True)` takes torchvision's cached ImageNet file from $TORCH_HOME (no download needed)."
    ckpt = tmp_path/'hub'/'checkpoints'
    ckpt.mkdir(parents=True)
    with torch.device('meta'): shapes = vgg16_bn(weights=None).state_dict()
    # every float tensor a single value expanded (stride 0): torch.save stores one number for it
    sd = {k: torch.full((1,), i / 1000).expand(v.shape) if v.is_floating_point() else torch.zeros_like(v, device='cpu')
          for i, (k, v) in enumerate(shapes.items())}
    torch.save(sd, ckpt/'vgg16_bn-6c64b313.pth')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter('error')   # no "random weights" warning
        feat_loss = rl.FeatureLoss(pretrained=True)
    assert torch.equal(feat_loss.m_feat[0].weight, sd['features.0.weight'])
    assert torch.equal(feat_loss.m_feat[41].running_var, sd['features.41.running_var'])
    assert not feat_loss.m_feat.training and not requires_grad(feat_loss.m_feat)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_feature_loss_follows_the_model_to_the_gpu(tmp_path):
    "The Learner moves the model, not the loss: the VGG moves to the batch's device on the first call."
    vgg_m = rl.vgg16_bn_features()
    feat_loss = rl.FeatureLoss(vgg_m, (22, 32, 42), (5, 15, 2))
    data = _image_data(tmp_path, device='cuda')
    learn = Learner(data, nn.Conv2d(3, 3, 3, padding=1), loss_func=feat_loss, callback_fns=LossMetrics, silent=True)
    learn.fit(1, 1e-3)
    assert next(vgg_m.parameters()).device.type == 'cuda'
    assert all(np.isfinite(v) for v in learn.recorder.metrics[-1])
    assert _hooks_on(vgg_m) == 0
