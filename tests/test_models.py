"""timm-style checks of every model and layer restorelab ships: forward shape, finiteness, gradients, state_dict
(plain and `module.`-prefixed), pickle, and Learner.save/load for a U-Net.

Each case is built once per module (a module-scoped parametrized fixture, so pytest runs all the tests of one case
together and frees its model before building the next); before every test the model gets back its pristine
parameters and buffers, its gradients are cleared and it is put in train mode, so no test sees another's side effects.
"""
import contextlib, io, pickle
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torchvision import models

from restorelab.layers import (NormType, ConvLayer, conv_layer, res_block, SequentialEx, MergeLayer, SelfAttention,
                               PixelShuffle_ICNR, icnr, Flatten, View, ResizeBatch, SigmoidRange,
                               AdaptiveConcatPool2d, PoolFlatten, Lambda)
import restorelab.all   # noqa: F401 (every module that registers a model builder)
from restorelab.models.core import MODEL_BUILDERS, model_spec, model_from_spec
from restorelab.models.unet import DynamicUnet
from restorelab.models.gan import gan_critic, basic_generator, basic_critic
from restorelab.vision.learner import unet_learner
from restorelab.core import clean_state_dict
from restorelab.test_utils import synth_segmentation
from restorelab.data.segmentation import SegmentationItemList

NT = NormType
# torch's own notice when the oneDNN flags are set (see `_backend`)
pytestmark = pytest.mark.filterwarnings('ignore:TF32 acceleration on top of oneDNN:UserWarning')
UNET_SIZE = (32, 32)   # small enough for 2 CPU cores; every encoder here still has >= 1x1 features at its end


@dataclass
class Case:
    id: str
    build: Callable[[], nn.Module]
    shapes: list                          # [(input shape, output shape)]; the first is used by the round trips
    unet: bool = False                    # every encoder parameter must get a nonzero gradient
    skip_check: bool = False              # also check that the skips alone carry gradient into the encoder
    heavy: bool = False                   # the state_dict test's fresh twin is built on `meta` (see `_load`)
    no_mkldnn: bool = False               # see `_backend`
    check: Callable | None = None         # case-specific check of `(model, output)`: the option took effect
    def __repr__(self): return self.id


def _backend(case):
    # oneDNN's backward of a 3x3 conv with thousands of channels on a 1x1 map (resnet50 U-Net's middle: 2048->4096)
    # takes ~8 s on this CPU against ~0.4 s for torch's own kernel; the library code under test is the same either way
    return torch.backends.mkldnn.flags(enabled=False) if case.no_mkldnn else contextlib.nullcontext()


# ------------------------------------------------------------------ model factories

# the registered models are built from their recipes, as `load_learner` rebuilds them (see test_every_kind_is_tested)
def _registered(kind, **settings):
    spec = model_spec(kind, **settings)
    assert spec is not None, (kind, settings)
    def build(): return model_from_spec(spec)
    build.kind = kind
    return build

def _unet(arch, size=UNET_SIZE, **kwargs): return _registered('unet', arch=arch, n_classes=3, img_size=size, **kwargs)
def _cnn(arch): return _registered('cnn', arch=arch, n_out=5)

def mnist_simple_cnn():
    "Lesson 7's plain CNN: five stride-2 convs (with bias) each followed by BN and, except the last, ReLU."
    chans, layers = [1, 8, 16, 32, 16, 10], []
    for ni, nf in zip(chans[:-1], chans[1:]):
        layers += [nn.Conv2d(ni, nf, kernel_size=3, stride=2, padding=1), nn.BatchNorm2d(nf), nn.ReLU()]
    return nn.Sequential(*layers[:-1], Flatten())

def mnist_resnetish(dense=False, **kwargs):
    "Lesson 7's ResNet-ish model: `conv_layer(ni, nf, stride=2)` + `res_block(nf)` stages (channels double if dense)."
    def build():
        stages, ni = [], 1
        for nf in (8, 16, 32, 16):
            stages.append(nn.Sequential(conv_layer(ni, nf, stride=2, **kwargs), res_block(nf, dense=dense, **kwargs)))
            ni = nf * 2 if dense else nf
        return nn.Sequential(*stages, conv_layer(ni, 10, stride=2, **kwargs), Flatten())
    return build

def double(x): return 2 * x   # module-level, so `Lambda(double)` pickles

def icnr_shuffle():
    conv = nn.Conv2d(8, 16, 1, bias=False)
    icnr(conv.weight, scale=2)
    return nn.Sequential(conv, nn.PixelShuffle(2))


# ------------------------------------------------------------------ case-specific checks

def _has(cls): return lambda m, out: any(isinstance(x, cls) for x in m.modules())

def _check_unet_default(m, out):
    assert hasattr(m, 'cross') and not _has(SelfAttention)(m, out) and not _has(nn.AvgPool2d)(m, out)
    assert isinstance(m.y_range, nn.Identity)

def _check_weightnorm(m, out):
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d) and parametrize.is_parametrized(c, 'weight')]
    assert len(convs) > 5 and all(hasattr(c.parametrizations.weight, 'original0') for c in convs)
    assert not any(isinstance(c, nn.Conv2d) and not parametrize.is_parametrized(c)
                   for name, c in m.named_modules() if not name.startswith('encoder'))

def _check_y_range(m, out):
    assert isinstance(m.y_range, SigmoidRange)
    assert out.min() >= -3 and out.max() <= 3 and out.std() > 0

def _check_bottle(m, out):
    first = m.cross[0][0]
    assert first.out_channels == first.in_channels // 2

def _check_no_cross(m, out): assert not hasattr(m, 'cross') and not m.last_cross

def _check_icnr(m, out):
    cells = out.unfold(2, 2, 2).unfold(3, 2, 2)   # (bs, C, h, w, 2, 2): constant in each cell after ICNR
    torch.testing.assert_close(cells, cells[..., :1, :1].expand_as(cells))
    assert out.std() > 0

def _check_range(low, high):
    def check(m, out): assert out.min() >= low and out.max() <= high
    return check

def _check_gan_critic(m, out):
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    assert convs and all(parametrize.is_parametrized(c, 'weight') for c in convs)   # spectral norm on every conv
    assert _has(SelfAttention)(m, out) and not _has(nn.BatchNorm2d)(m, out)

def _check_srresnet_icnr(m, out):
    "Every upsampling stage (conv + PixelShuffle) starts as nearest-neighbour upsampling: constant 2x2 cells."
    up = m.features[m.upsample_idx]
    x = torch.randn(2, up[0][0].in_channels, 5, 6)
    with torch.no_grad():
        for conv, shuffle in zip(up[::2], up[1::2]):
            x = shuffle(conv(x))
            cells = x.unfold(2, 2, 2).unfold(3, 2, 2)
            torch.testing.assert_close(cells, cells[..., :1, :1].expand_as(cells))

def _check_spectral(m, out): assert parametrize.is_parametrized(m[0], 'weight') and hasattr(m[0].parametrizations.weight[0], '_u')
def _check_instance(m, out): assert isinstance(m[1], nn.InstanceNorm2d) and m[1].affine
def _check_bn_last(m, out): assert isinstance(m[1], nn.ReLU) and isinstance(m[2], nn.BatchNorm2d)
def _check_zero_gamma(m, out): assert (m[1].weight == 0).all()


IMG, IMG_ODD = (2, 3, *UNET_SIZE), (2, 3, 50, 70)
def _same(shape, c=3): return (shape, (shape[0], c, *shape[2:]))

MODEL_CASES = [
    Case('unet-resnet18', _unet('resnet18'), [_same(IMG)], unet=True, skip_check=True, check=_check_unet_default),
    Case('unet-resnet34', _unet('resnet34'), [_same(IMG), _same(IMG_ODD)], unet=True, skip_check=True),
    Case('unet-resnet50', _unet('resnet50'), [_same(IMG)], unet=True, skip_check=True, heavy=True, no_mkldnn=True),
    Case('unet-densenet121', _unet('densenet121'), [_same(IMG)], unet=True, skip_check=True, heavy=True),
    Case('unet-vgg16_bn', _unet('vgg16_bn'), [_same(IMG), _same(IMG_ODD)], unet=True, skip_check=True, heavy=True),
    Case('unet-resnet18-self_attention', _unet('resnet18', self_attention=True), [_same(IMG)], unet=True,
         check=_has(SelfAttention)),
    Case('unet-resnet18-blur', _unet('resnet18', blur=True), [_same(IMG)], unet=True, check=_has(nn.AvgPool2d)),
    Case('unet-resnet18-weightnorm', _unet('resnet18', norm_type=NT.Weight), [_same(IMG)], unet=True,
         check=_check_weightnorm),
    Case('unet-resnet18-y_range', _unet('resnet18', y_range=(-3, 3)), [_same(IMG)], unet=True, check=_check_y_range),
    Case('unet-resnet18-bottle', _unet('resnet18', bottle=True), [_same(IMG)], unet=True, check=_check_bottle),
    Case('unet-resnet18-no_last_cross', _unet('resnet18', last_cross=False), [_same(IMG)], unet=True,
         check=_check_no_cross),
    Case('cnn-resnet18', _cnn('resnet18'), [(IMG, (2, 5))]),
    Case('cnn-densenet121', _cnn('densenet121'), [(IMG, (2, 5))]),
    Case('cnn-vgg16_bn', _cnn('vgg16_bn'), [(IMG, (2, 5))], heavy=True),   # its discarded classifier is 120M
    Case('mnist-simple_cnn', mnist_simple_cnn, [((2, 1, 28, 28), (2, 10))]),
    Case('mnist-resnetish', mnist_resnetish(), [((2, 1, 28, 28), (2, 10))]),
    Case('mnist-resnetish-bn_last', mnist_resnetish(bn_1st=False), [((2, 1, 28, 28), (2, 10))]),
    Case('mnist-resnetish-dense', mnist_resnetish(dense=True), [((2, 1, 28, 28), (2, 10))]),
    # lesson 7's GAN networks (small widths: the checks are about structure, not capacity)
    Case('gan_critic', lambda: gan_critic(nf=16), [((2, 3, 128, 128), (2, 25)), ((2, 3, 64, 64), (2, 1))],
         check=_check_gan_critic),
    Case('basic_generator', lambda: basic_generator(32, 3, noise_sz=16, n_features=8, n_extra_layers=1),
         [((2, 16, 1, 1), (2, 3, 32, 32))], check=_check_range(-1, 1)),
    Case('basic_critic', lambda: basic_critic(32, 3, n_features=8, n_extra_layers=1), [((2, 3, 32, 32), (2, 1))]),
    # lesson 14's networks: super-resolution at x2 and x4 (odd sizes: every conv is padded), fast style transfer
    Case('srresnet-x2', _registered('srresnet', nf=16, scale=2, n_res=2),
         [((2, 3, 9, 13), (2, 3, 18, 26)), ((1, 3, 16, 16), (1, 3, 32, 32))], check=_check_srresnet_icnr),
    Case('srresnet-x4', _registered('srresnet', nf=16, scale=4, n_res=2), [((2, 3, 9, 13), (2, 3, 36, 52))],
         check=_check_srresnet_icnr),
    Case('srresnet-x4-grey', _registered('srresnet', nf=8, scale=4, n_res=1, n_channels=1), [((2, 1, 7, 5), (2, 1, 28, 20))]),
    Case('style_resnet', _registered('style_resnet'), [_same((2, 3, 50, 70)), _same((1, 3, 64, 64))]),
]

X8 = (2, 4, 8, 8)
def _io(shape_in, shape_out): return [(shape_in, shape_out)]

LAYER_CASES = [
    Case('conv-batch', lambda: conv_layer(4, 8), _io(X8, (2, 8, 8, 8))),
    Case('conv-batchzero', lambda: conv_layer(4, 8, norm_type=NT.BatchZero), _io(X8, (2, 8, 8, 8)),
         check=_check_zero_gamma),
    Case('conv-instance', lambda: ConvLayer(4, 8, norm_type=NT.Instance), _io(X8, (2, 8, 8, 8)), check=_check_instance),
    Case('conv-instancezero', lambda: ConvLayer(4, 8, norm_type=NT.InstanceZero), _io(X8, (2, 8, 8, 8)),
         check=_check_zero_gamma),
    Case('conv-weight', lambda: conv_layer(4, 8, norm_type=NT.Weight), _io(X8, (2, 8, 8, 8))),
    Case('conv-spectral', lambda: conv_layer(4, 8, norm_type=NT.Spectral), _io(X8, (2, 8, 8, 8)),
         check=_check_spectral),
    Case('conv-none', lambda: conv_layer(4, 8, norm_type=None), _io(X8, (2, 8, 8, 8))),
    Case('conv-bn_last', lambda: conv_layer(4, 8, bn_1st=False), _io(X8, (2, 8, 8, 8)), check=_check_bn_last),
    Case('conv-stride2-leaky', lambda: conv_layer(4, 8, stride=2, leaky=0.1), _io(X8, (2, 8, 4, 4))),
    Case('conv-transpose', lambda: conv_layer(4, 8, ks=2, stride=2, transpose=True), _io(X8, (2, 8, 16, 16))),
    Case('conv-transpose-spectral', lambda: ConvLayer(4, 8, ks=2, stride=2, transpose=True, norm_type=NT.Spectral),
         _io(X8, (2, 8, 16, 16))),
    Case('conv-self_attention', lambda: conv_layer(4, 16, self_attention=True), _io(X8, (2, 16, 8, 8)),
         check=lambda m, out: isinstance(m[-1], SelfAttention)),
    Case('conv-1d', lambda: conv_layer(4, 8, is_1d=True), _io((2, 4, 10), (2, 8, 10))),
    Case('conv-3d', lambda: ConvLayer(4, 8, ndim=3), _io((2, 4, 4, 4, 4), (2, 8, 4, 4, 4))),
    Case('res_block', lambda: res_block(8), _io((2, 8, 6, 6), (2, 8, 6, 6))),
    Case('res_block-dense', lambda: res_block(8, dense=True), _io((2, 8, 6, 6), (2, 16, 6, 6))),
    Case('res_block-bottle', lambda: res_block(8, bottle=True), _io((2, 8, 6, 6), (2, 8, 6, 6))),
    Case('res_block-dense-bottle', lambda: res_block(8, dense=True, bottle=True), _io((2, 8, 6, 6), (2, 16, 6, 6))),
    Case('res_block-instance', lambda: res_block(8, norm_type=NT.Instance), _io((2, 8, 6, 6), (2, 8, 6, 6))),
    Case('res_block-weight', lambda: res_block(8, norm_type=NT.Weight), _io((2, 8, 6, 6), (2, 8, 6, 6))),
    Case('SequentialEx-MergeLayer', lambda: SequentialEx(conv_layer(4, 4), conv_layer(4, 4), MergeLayer()),
         _io((2, 4, 5, 5), (2, 4, 5, 5))),
    Case('SequentialEx-MergeLayer-dense', lambda: SequentialEx(res_block(4), MergeLayer(dense=True)),
         _io((2, 4, 5, 5), (2, 8, 5, 5))),
    Case('SelfAttention', lambda: SelfAttention(16), _io((2, 16, 5, 5), (2, 16, 5, 5))),
    Case('pixelshuffle-weight', lambda: PixelShuffle_ICNR(8, 4), _io((2, 8, 5, 7), (2, 4, 10, 14))),
    Case('pixelshuffle-scale3', lambda: PixelShuffle_ICNR(8, 4, scale=3), _io((2, 8, 5, 7), (2, 4, 15, 21))),
    Case('pixelshuffle-blur', lambda: PixelShuffle_ICNR(8, blur=True), _io((2, 8, 5, 7), (2, 8, 10, 14))),
    Case('pixelshuffle-batch', lambda: PixelShuffle_ICNR(8, 4, norm_type=NT.Batch), _io((2, 8, 5, 7), (2, 4, 10, 14))),
    Case('pixelshuffle-spectral', lambda: PixelShuffle_ICNR(8, 4, norm_type=NT.Spectral),
         _io((2, 8, 5, 7), (2, 4, 10, 14))),
    Case('pixelshuffle-none', lambda: PixelShuffle_ICNR(8, 4, norm_type=None), _io((2, 8, 5, 7), (2, 4, 10, 14))),
    Case('icnr', icnr_shuffle, _io((2, 8, 5, 7), (2, 4, 10, 14)), check=_check_icnr),
    Case('Flatten', Flatten, _io((2, 3, 4, 4), (2, 48))),
    Case('Flatten-full', lambda: Flatten(full=True), _io((2, 3, 4, 4), (96,))),
    Case('View', lambda: View(-1, 8), _io((2, 4, 4), (4, 8))),
    Case('ResizeBatch', lambda: ResizeBatch(4, 2), _io((2, 8), (2, 4, 2))),
    Case('SigmoidRange', lambda: SigmoidRange(-1, 5), _io((2, 3), (2, 3)), check=_check_range(-1, 5)),
    Case('AdaptiveConcatPool2d', AdaptiveConcatPool2d, _io((2, 3, 5, 5), (2, 6, 1, 1))),
    Case('AdaptiveConcatPool2d-2', lambda: AdaptiveConcatPool2d(2), _io((2, 3, 5, 5), (2, 6, 2, 2))),
    Case('PoolFlatten', PoolFlatten, _io((2, 3, 5, 5), (2, 3))),
    Case('Lambda', lambda: Lambda(double), _io((2, 3), (2, 3))),
]
CASES = MODEL_CASES + LAYER_CASES


# ------------------------------------------------------------------ fixtures and helpers

def _build(case, seed=0):
    torch.manual_seed(seed)
    return case.build()

def _fresh(case):
    "A freshly built twin of `case`: initialised with seed 1, or (heavy cases) built on `meta`, without any values."
    if not case.heavy: return _build(case, seed=1)
    with torch.device('meta'): return case.build()

def _load(case, twin, sd):
    # a `meta` twin takes the loaded tensors themselves: every value must come from `sd` (a missing one stays on
    # `meta` and the forward fails), and nothing is initialised only to be overwritten
    twin.load_state_dict(sd, assign=case.heavy)
    return twin

@pytest.fixture(scope='module', params=CASES, ids=[c.id for c in CASES])
def built(request):
    case = request.param
    model = _build(case)
    pristine = {k: v.clone() for k, v in model.state_dict().items()}
    yield case, model, pristine
    del model, pristine

@pytest.fixture
def case_model(built):
    "The case's model as just built: pristine parameters and buffers, no gradients, train mode; torch seeded."
    case, model, pristine = built
    model.load_state_dict(pristine)
    for p in model.parameters(): p.grad = None
    torch.manual_seed(0)
    return case, model.train()

def _input(case, i=0): return torch.randn(*case.shapes[i][0])

def _n_float_state(model): return sum(v.numel() for v in model.state_dict().values() if v.is_floating_point())

def _settle(model, x):
    "Give every piece of state a non-default value that changes the eval output, then switch to eval mode."
    with torch.no_grad():
        # zero-initialised gates (SelfAttention's gamma, BatchZero/InstanceZero weights, zeroed biases) hide the
        # weights behind them: open them so a round trip that lost those weights changes the output
        for p in model.parameters():
            if not p.any(): p.fill_(0.1)
        # a train-mode forward steps spectral norm's power iteration (its `_u`/`_v` buffers)
        if any(parametrize.is_parametrized(m) for m in model.modules()): model.train()(x)
        for m in model.modules():   # running statistics away from their (0, 1) defaults
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.2, 0.2); m.running_var.uniform_(0.8, 1.2); m.num_batches_tracked.fill_(7)
    return model.eval()

def _eval_out(model, x):
    with torch.no_grad(): return model.eval()(x)

def _bias_before_bn(body) -> set:
    "Names of conv biases directly followed by a BatchNorm in `body` (vgg*_bn): train-mode BN cancels their gradient."
    kids = list(body.named_children())
    return {f'{name}.bias' for (name, m), (_, nxt) in zip(kids, kids[1:])
            if isinstance(m, nn.Conv2d) and m.bias is not None and isinstance(nxt, nn.modules.batchnorm._BatchNorm)}

def _assert_grads(case, model):
    named = list(model.named_parameters())
    for name, p in named:
        assert p.grad is not None, f'{case.id}: {name} got no gradient'
        assert torch.isfinite(p.grad).all(), f'{case.id}: {name} has a non-finite gradient'
    if named: assert any(p.grad.any() for _, p in named), f'{case.id}: every gradient is zero'
    if case.unet:   # (not enough alone against detached skips: the bottleneck path reaches the whole encoder too)
        exempt = _bias_before_bn(model.encoder)
        for name, p in model.encoder.named_parameters():
            if name not in exempt: assert p.grad.any(), f'{case.id}: encoder parameter {name} has an all-zero gradient'


def _check_skips_carry_gradients(case, model):
    "With the bottleneck path cut, the skip connections alone must bring gradient to every encoder stage they tap."
    for p in model.parameters(): p.grad = None
    idxs = model.encoder.idxs
    assert idxs, f'{case.id}: no skip connections found'
    handle = model.middle.register_forward_hook(lambda m, inp, out: out.detach())
    with _backend(case): model(_input(case)).mean().backward()
    handle.remove()
    assert all(p.grad is None for p in model.middle.parameters())   # the cut worked
    exempt = _bias_before_bn(model.encoder)
    for i, child in enumerate(model.encoder):
        for name, p in child.named_parameters():
            if i > idxs[-1]: assert p.grad is None, f'{case.id}: {i}.{name} after the last skip got a gradient'
            elif f'{i}.{name}' not in exempt:
                assert p.grad is not None and p.grad.any(), f'{case.id}: no gradient through the skips to {i}.{name}'

# ------------------------------------------------------------------ tests

def test_every_kind_is_tested():
    "A family of models that registers a builder gets the checks below: some case must build each registered kind."
    tested = {getattr(c.build, 'kind', None) for c in MODEL_CASES}
    assert set(MODEL_BUILDERS) <= tested, f'no test case builds {sorted(set(MODEL_BUILDERS) - tested)}'


def test_forward_backward(case_model):
    "Output shape (incl. odd input sizes), finiteness, every parameter gets a gradient, the option took effect."
    case, model = case_model
    for i, (in_shape, out_shape) in enumerate(case.shapes):
        for p in model.parameters(): p.grad = None
        x = torch.randn(*in_shape, requires_grad=True)
        with _backend(case):
            out = model(x)
            assert out.shape == out_shape, f'{case.id} on {tuple(in_shape)}: output {tuple(out.shape)}'
            assert torch.isfinite(out).all()
            out.mean().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()   # may be 0: a zero-initialised gate at the end
        _assert_grads(case, model)
        if case.check is not None and i == 0: case.check(model, out.detach())
    # the regression test for fastai's detached skips (one per architecture: the variants share resnet18's skips)
    if case.skip_check: _check_skips_carry_gradients(case, model)

def test_state_dict_round_trip(case_model):
    "torch.save/torch.load of the state_dict into a fresh twin, and a DataParallel (`module.`) one via clean_state_dict."
    case, model = case_model
    x = _input(case)
    ref = _eval_out(_settle(model, x), x)
    assert torch.isfinite(ref).all()
    has_state = _n_float_state(model) > 0
    buf = io.BytesIO(); torch.save(model.state_dict(), buf); buf.seek(0)
    sd = torch.load(buf, weights_only=True); del buf
    twin = _fresh(case)
    if has_state and not case.heavy: assert not torch.allclose(_eval_out(twin, x), ref), 'the twin must differ first'
    torch.testing.assert_close(_eval_out(_load(case, twin, sd), x), ref, rtol=0, atol=0)
    del twin, sd

    dp_sd = nn.DataParallel(model).state_dict()
    model.cpu()   # (DataParallel moves the model to the GPU where there is one)
    assert list(dp_sd) == [f'module.{k}' for k in model.state_dict()]
    twin = _fresh(case)
    if has_state:
        with pytest.raises(RuntimeError, match='module'): _load(case, twin, dp_sd)
    torch.testing.assert_close(_eval_out(_load(case, twin, clean_state_dict(dp_sd)), x), ref, rtol=0, atol=0)

def test_pickle_round_trip(case_model):
    "pickle.loads(pickle.dumps(model)) is an independent copy with the same state and eval outputs."
    case, model = case_model
    x = _input(case)
    ref = _eval_out(_settle(model, x), x)
    copy = pickle.loads(pickle.dumps(model))
    assert copy is not model and type(copy) is type(model) and not copy.training
    sd, sd2 = model.state_dict(), copy.state_dict()
    assert list(sd2) == list(sd)
    if sd: assert all(sd2[k].data_ptr() != sd[k].data_ptr() for k in sd)
    torch.testing.assert_close(_eval_out(copy, x), ref, rtol=0, atol=0)


def _seg_data(tmp_path):
    path = synth_segmentation(tmp_path/'seg', n_train=4, n_valid=2, size=(32, 48), n_classes=3)
    codes = np.loadtxt(path/'codes.txt', dtype=str)
    def get_y(x): return path/f'{x.parent.name}annot'/f'{x.stem}.png'
    return (SegmentationItemList.from_folder(path).split_by_folder(valid='val').label_from_func(get_y, classes=codes)
            .transform(size=(32, 48), tfm_y=True).databunch(bs=2))

def test_learner_save_load_unet(tmp_path):
    "Learner.save/Learner.load on a unet_learner: own files, bare and `{'model': ...}` DataParallel files, a wrapped model."
    data = _seg_data(tmp_path)
    torch.manual_seed(0)
    learn = unet_learner(data, models.resnet18, pretrained=False, silent=True)
    xb, _ = next(iter(data.valid_dl))
    ref = _eval_out(_settle(learn.model, xb), xb)
    assert ref.shape == (2, 3, 32, 48) and torch.isfinite(ref).all()
    model_dir = learn.path/learn.model_dir
    learn.save('plain')
    assert (model_dir/'plain.pth').is_file() and not list(model_dir.glob('*.tmp*'))
    dp_sd = nn.DataParallel(learn.model).state_dict()
    learn.model.cpu()
    assert all(k.startswith('module.') for k in dp_sd)
    torch.save({'model': dp_sd}, model_dir/'dp.pth')
    torch.save(dp_sd, model_dir/'dp_bare.pth')

    torch.manual_seed(1)
    other = unet_learner(data, models.resnet18, pretrained=False, silent=True)
    fresh = {k: v.clone() for k, v in other.model.state_dict().items()}
    def reset():
        other.model.load_state_dict(fresh)
        assert not torch.allclose(_eval_out(other.model, xb), ref)
    for name in ('plain', 'dp', 'dp_bare'):
        reset()
        assert other.load(name) is other
        torch.testing.assert_close(_eval_out(other.model, xb), ref, rtol=0, atol=0, msg=lambda m: f'{name}: {m}')
    reset()
    with pytest.raises(RuntimeError, match='does not match'): other.load('dp', remove_module=False)
    reset()
    other.model = nn.DataParallel(other.model)   # loading into a wrapped model goes to the model inside
    other.load('plain')
    torch.testing.assert_close(_eval_out(other.model.module, xb), ref, rtol=0, atol=0)
