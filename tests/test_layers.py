"Parametrized checks of every module restorelab.layers ships: shape, finiteness, gradients, state_dict and pickle."
import copy, io, pickle

import pytest
import torch
from torch import nn

from restorelab.layers import (NormType, batchnorm_2d, relu, conv2d, conv2d_trans, conv1d, ConvLayer, conv_layer,
                               SelfAttention, SequentialEx, MergeLayer, res_block, Flatten, Lambda, View, ResizeBatch,
                               SigmoidRange, AdaptiveConcatPool2d, PoolFlatten, MatmulConv2d)

torch.set_num_threads(1)  # these modules are tiny: threads only add overhead on a shared CPU

NT = NormType

def double(x): return 2 * x  # module-level, so `Lambda(double)` pickles

def lesson_resnet():
    def conv2(ni, nf): return conv_layer(ni, nf, stride=2)
    stages = [nn.Sequential(conv2(ni, nf), res_block(nf)) for ni, nf in ((1, 8), (8, 16), (16, 32), (32, 16))]
    return nn.Sequential(*stages, conv2(16, 10), Flatten())

# (id, factory, input shape, expected output shape)
CASES = [
    ('conv_layer', lambda: conv_layer(3, 8), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-stride2', lambda: conv_layer(3, 8, stride=2), (2, 3, 8, 8), (2, 8, 4, 4)),
    ('conv_layer-v1-order', lambda: conv_layer(3, 8, bn_1st=False), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-batchzero', lambda: conv_layer(3, 8, norm_type=NT.BatchZero), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-weight', lambda: conv_layer(3, 8, norm_type=NT.Weight), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-spectral', lambda: conv_layer(3, 8, norm_type=NT.Spectral, leaky=0.2), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-instance', lambda: conv_layer(3, 8, norm_type=NT.Instance), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-instancezero', lambda: conv_layer(3, 8, norm_type=NT.InstanceZero, bn_1st=False),
     (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-nonorm', lambda: conv_layer(3, 8, norm_type=None), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-leaky', lambda: conv_layer(3, 8, leaky=0.1), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-noactiv', lambda: conv_layer(3, 8, use_activ=False, ks=1), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('conv_layer-transpose', lambda: conv_layer(3, 8, ks=2, stride=2, transpose=True), (2, 3, 8, 8), (2, 8, 16, 16)),
    ('conv_layer-transpose-weight', lambda: conv_layer(3, 8, ks=2, stride=2, transpose=True, norm_type=NT.Weight),
     (2, 3, 8, 8), (2, 8, 16, 16)),
    ('conv_layer-transpose-spectral', lambda: conv_layer(3, 8, ks=2, stride=2, transpose=True, norm_type=NT.Spectral),
     (2, 3, 8, 8), (2, 8, 16, 16)),
    ('conv_layer-matmul-spectral', lambda: conv_layer(8, 16, ks=4, stride=2, norm_type=NT.Spectral, leaky=0.2, matmul=True),
     (2, 8, 8, 8), (2, 16, 4, 4)),
    ('conv_layer-matmul-batch', lambda: conv_layer(3, 8, matmul=True), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('MatmulConv2d', lambda: MatmulConv2d(3, 5, 3, stride=(2, 1), padding=(0, 2), bias=True), (2, 3, 9, 8), (2, 5, 4, 10)),
    ('conv_layer-self_attention', lambda: conv_layer(3, 16, self_attention=True), (2, 3, 6, 6), (2, 16, 6, 6)),
    ('conv_layer-1d', lambda: conv_layer(3, 8, is_1d=True), (2, 3, 10), (2, 8, 10)),
    ('ConvLayer-3d', lambda: ConvLayer(3, 8, ndim=3, norm_type=NT.Instance), (2, 3, 4, 4, 4), (2, 8, 4, 4, 4)),
    ('ConvLayer-gelu', lambda: ConvLayer(3, 8, act_cls=nn.GELU), (2, 3, 8, 8), (2, 8, 8, 8)),
    ('res_block', lambda: res_block(8), (2, 8, 6, 6), (2, 8, 6, 6)),
    ('res_block-v1-order', lambda: res_block(8, bn_1st=False), (2, 8, 6, 6), (2, 8, 6, 6)),
    ('res_block-dense', lambda: res_block(8, dense=True), (2, 8, 6, 6), (2, 16, 6, 6)),
    ('res_block-bottle', lambda: res_block(8, bottle=True), (2, 8, 6, 6), (2, 8, 6, 6)),
    ('res_block-dense-bottle', lambda: res_block(8, dense=True, bottle=True), (2, 8, 6, 6), (2, 16, 6, 6)),
    ('res_block-weight', lambda: res_block(8, norm_type=NT.Weight), (2, 8, 6, 6), (2, 8, 6, 6)),
    ('res_block-spectral-leaky', lambda: res_block(8, norm_type=NT.Spectral, leaky=0.2), (2, 8, 6, 6), (2, 8, 6, 6)),
    ('res_block-instance', lambda: res_block(8, norm_type=NT.Instance), (2, 8, 6, 6), (2, 8, 6, 6)),
    ('res_block-nonorm', lambda: res_block(8, norm_type=None), (2, 8, 6, 6), (2, 8, 6, 6)),
    ('SelfAttention', lambda: SelfAttention(16), (2, 16, 5, 5), (2, 16, 5, 5)),
    ('SequentialEx', lambda: SequentialEx(conv_layer(4, 4), conv_layer(4, 4), MergeLayer()),
     (2, 4, 5, 5), (2, 4, 5, 5)),
    ('SequentialEx-nested', lambda: SequentialEx(res_block(4), res_block(4), MergeLayer(dense=True)),
     (2, 4, 5, 5), (2, 8, 5, 5)),
    ('batchnorm_2d', lambda: batchnorm_2d(3), (2, 3, 4, 4), (2, 3, 4, 4)),
    ('batchnorm_2d-zero', lambda: batchnorm_2d(3, NT.BatchZero), (2, 3, 4, 4), (2, 3, 4, 4)),
    ('relu-leaky', lambda: relu(leaky=0.3), (2, 3, 4, 4), (2, 3, 4, 4)),
    ('conv2d', lambda: conv2d(3, 5, stride=2), (2, 3, 8, 8), (2, 5, 4, 4)),
    ('conv2d-bias', lambda: conv2d(3, 5, ks=5, bias=True), (2, 3, 8, 8), (2, 5, 8, 8)),
    ('conv2d_trans', lambda: conv2d_trans(3, 5), (2, 3, 8, 8), (2, 5, 16, 16)),
    ('conv1d', lambda: conv1d(8, 4), (2, 8, 7), (2, 4, 7)),
    ('Flatten', lambda: Flatten(), (2, 3, 4, 4), (2, 48)),
    ('Flatten-full', lambda: Flatten(full=True), (2, 3, 4, 4), (96,)),
    ('Lambda', lambda: Lambda(double), (2, 3), (2, 3)),
    ('View', lambda: View(-1, 8), (2, 4, 4), (4, 8)),
    ('ResizeBatch', lambda: ResizeBatch(4, 2), (2, 8), (2, 4, 2)),
    ('SigmoidRange', lambda: SigmoidRange(-1, 5), (2, 3), (2, 3)),
    ('AdaptiveConcatPool2d', lambda: AdaptiveConcatPool2d(), (2, 3, 5, 5), (2, 6, 1, 1)),
    ('AdaptiveConcatPool2d-2', lambda: AdaptiveConcatPool2d(2), (2, 3, 5, 5), (2, 6, 2, 2)),
    ('PoolFlatten', lambda: PoolFlatten(), (2, 3, 5, 5), (2, 3)),
    ('lesson-resnet', lesson_resnet, (2, 1, 16, 16), (2, 10)),
]
IDS = [c[0] for c in CASES]

def _make(factory, in_shape, seed=0):
    torch.manual_seed(seed)
    return factory(), torch.randn(*in_shape)

@pytest.mark.parametrize('name,factory,in_shape,out_shape', CASES, ids=IDS)
def test_forward_backward(name, factory, in_shape, out_shape):
    m, x = _make(factory, in_shape)
    x.requires_grad_()
    out = m(x)
    assert out.shape == out_shape
    assert torch.isfinite(out).all()
    assert not hasattr(out, 'orig') and not hasattr(x, 'orig')
    out.float().pow(2).mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in m.named_parameters():
        assert p.grad is not None, f'{name}: {pname} got no gradient'
        assert torch.isfinite(p.grad).all(), f'{name}: {pname} has a non-finite gradient'

def _train_step(m, x):
    "One forward in train mode, so BN running stats and spectral-norm vectors move away from their init."
    m.train()
    with torch.no_grad(): m(x)
    return m.eval()

@pytest.mark.parametrize('name,factory,in_shape,out_shape', CASES, ids=IDS)
def test_state_dict_round_trip(name, factory, in_shape, out_shape):
    m, x = _make(factory, in_shape)
    _train_step(m, x)
    buf = io.BytesIO(); torch.save(m.state_dict(), buf); buf.seek(0)
    m2, _ = _make(factory, in_shape, seed=1)  # a differently initialised twin
    m2.load_state_dict(torch.load(buf, weights_only=True))
    m2.eval()
    with torch.no_grad(): torch.testing.assert_close(m2(x), m(x), rtol=0, atol=0)

@pytest.mark.parametrize('name,factory,in_shape,out_shape', CASES, ids=IDS)
def test_pickle_round_trip(name, factory, in_shape, out_shape):
    m, x = _make(factory, in_shape)
    _train_step(m, x)
    if name == 'conv1d':  # a bare parametrized module: torch itself allows only state_dict; containers fix that
        with pytest.raises(RuntimeError, match='state_dict'): pickle.dumps(m)
        return
    m2 = pickle.loads(pickle.dumps(m))
    m3 = copy.deepcopy(m)
    with torch.no_grad():
        torch.testing.assert_close(m2(x), m(x), rtol=0, atol=0)
        torch.testing.assert_close(m3(x), m(x), rtol=0, atol=0)
    sd, sd2 = m.state_dict(), m2.state_dict()
    assert list(sd) == list(sd2)
    for k in sd: torch.testing.assert_close(sd2[k], sd[k], rtol=0, atol=0)
    # the copy trains like the original: same outputs in train mode (BN batch stats, spectral-norm power iteration)
    with torch.no_grad(): torch.testing.assert_close(m2.train()(x), m.train()(x), rtol=0, atol=0)

def test_pickle_keeps_frozen_parameters_frozen():
    m = conv_layer(3, 8, norm_type=NT.Weight)
    for p in m.parameters(): p.requires_grad_(False)
    m2 = pickle.loads(pickle.dumps(m))
    assert not any(p.requires_grad for p in m2.parameters())

def test_pickle_leaves_original_untouched():
    m = conv_layer(3, 16, norm_type=NT.Spectral, self_attention=True)  # train mode: spectral norm steps on each access
    x = torch.randn(2, 3, 6, 6)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    pickle.dumps(m); copy.deepcopy(m)
    for k, v in m.state_dict().items(): torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    assert m.training and type(m[0]).__name__ == 'ParametrizedConv2d'
    m.eval()
    with torch.no_grad(): before = m(x)
    pickle.dumps(m)
    with torch.no_grad(): torch.testing.assert_close(m(x), before, rtol=0, atol=0)

@pytest.mark.parametrize('bn_1st', [True, False])
@pytest.mark.parametrize('norm_type', [NT.Batch, NT.Instance])
def test_res_block_starts_near_identity(bn_1st, norm_type):
    rb = res_block(8, norm_type=norm_type, bn_1st=bn_1st).eval()
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad(): torch.testing.assert_close(rb(x), x + 1e-3)

@pytest.mark.parametrize('bf16', [False, True])
@pytest.mark.parametrize('norm_type', [NT.Spectral, NT.Weight, NT.Batch, None])
def test_matmul_conv_layer_matches_conv_layer(norm_type, bf16):
    "matmul=True computes what the nn.Conv2d layer computes, in-place activation, norms and autocast included."
    layers = []
    for matmul in (False, True):
        torch.manual_seed(0)
        layers.append(conv_layer(8, 16, ks=4, stride=2, norm_type=norm_type, leaky=0.2, matmul=matmul))
    assert isinstance(layers[1][0], MatmulConv2d) and not isinstance(layers[0][0], MatmulConv2d)
    x = torch.randn(3, 8, 10, 10)
    outs, grads = [], []
    for m in layers:
        m.train()
        xi = x.clone().requires_grad_()
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): y = m(xi)
        y.float().pow(2).mean().backward()
        outs.append(y.float()); grads.append([xi.grad, *(p.grad for p in m.parameters())])
    tol = dict(rtol=2e-2, atol=2e-2) if bf16 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(outs[1], outs[0], **tol)
    for a, b in zip(grads[1], grads[0]): torch.testing.assert_close(a, b, **tol)

def test_matmul_conv2d_edge_cases():
    m = MatmulConv2d(4, 6, 3, padding=1)
    assert m(torch.randn(0, 4, 5, 5)).shape == (0, 6, 5, 5)   # an empty batch, as nn.Conv2d
    assert m(torch.randn(2, 4, 1, 1)).shape == (2, 6, 1, 1)   # smaller than the kernel, padding makes it fit
    with pytest.raises(ValueError, match=r'\(bs, 4, h, w\)'): m(torch.randn(2, 5, 5, 5))
    with pytest.raises(ValueError, match='matmul=True'): ConvLayer(3, 4, ndim=1, matmul=True)
    # where it does not compute as a matrix product it is nn.Conv2d: dilation, reflect padding, 'same'
    for kwargs in (dict(dilation=2, padding=2), dict(padding=1, padding_mode='reflect'), dict(padding='same')):
        torch.manual_seed(0); ref = nn.Conv2d(4, 6, 3, **kwargs)
        mm = MatmulConv2d(4, 6, 3, **kwargs); mm.load_state_dict(ref.state_dict())
        x = torch.randn(2, 4, 7, 7)
        with torch.no_grad(): torch.testing.assert_close(mm(x), ref(x))

def test_bad_inputs():
    with pytest.raises(ValueError, match='ndim'): ConvLayer(3, 4, ndim=0)
    with pytest.raises(TypeError, match='norm_type'): conv_layer(3, 4, norm_type='Batch')
    with pytest.raises(ValueError, match='n_channels'): SelfAttention(7)
    with pytest.raises(ValueError, match='norm_type'): batchnorm_2d(3, NT.Spectral)
    with pytest.raises(RuntimeError, match='SequentialEx'): MergeLayer()(torch.randn(2, 3))
