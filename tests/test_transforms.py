"Checks of restorelab.data.transforms that read better as parametrized pytest cases than as notebook cells."
import pickle

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from restorelab.data.transforms import (apply_tfms, apply_tfms_batch, can_batch, crop, crop_pad, dihedral, flip_lr,
                                        flip_vert, pad, rand_crop, rand_pad)
from restorelab.data.augment import brightness, contrast, get_transforms, rand_zoom, rotate, symmetric_warp, zoom
from restorelab.data.bunch import Normalize, imagenet_stats

# every constructor, with non-default arguments where that exercises more code
ALL_TFMS = {
    'pad': lambda: pad(2, mode='zeros'), 'crop': lambda: crop(6, row_pct=(0, 1), col_pct=0.2),
    'crop_pad': lambda: crop_pad(12, padding_mode='border'), 'rand_crop': lambda: rand_crop(p=0.5),
    'flip_lr': lambda: flip_lr(), 'flip_vert': lambda: flip_vert(), 'dihedral': lambda: dihedral(),
    'rotate': lambda: rotate(degrees=(-30, 30), p=0.75), 'zoom': lambda: zoom(scale=(1., 2.)),
    'rand_zoom': lambda: rand_zoom(scale=(1., 1.5), p=0.5), 'symmetric_warp': lambda: symmetric_warp(p=0.9),
    'brightness': lambda: brightness(change=(0.3, 0.7)), 'contrast': lambda: contrast(scale=(0.5, 2.)),
}
# transforms that keep the size and may be switched off by p
SIZED = ['flip_lr', 'flip_vert', 'dihedral', 'rotate', 'zoom', 'rand_zoom', 'symmetric_warp', 'brightness', 'contrast']
GEOMETRIC = ['pad', 'crop', 'crop_pad', 'rand_crop', 'flip_lr', 'flip_vert', 'dihedral', 'rotate', 'zoom', 'symmetric_warp']


def blocks(h=32, w=40, block=8):
    "A block-class mask (values 0..) and a 3-channel uint8 image whose value is 5 × the class."
    m = (torch.arange(h)[:, None] // block * 16 + torch.arange(w)[None] // block).to(torch.uint8)[None]
    return (m * 5).expand(3, h, w).contiguous(), m


@pytest.mark.parametrize('name', list(ALL_TFMS))
def test_pickle_and_repr(name):
    tfm = ALL_TFMS[name]()
    back = pickle.loads(pickle.dumps(tfm))
    assert repr(back) == repr(tfm) and repr(tfm).startswith(type(tfm).__name__ + '(')
    x = torch.randint(0, 256, (4, 3, 10, 10), dtype=torch.uint8)
    torch.manual_seed(3); a = apply_tfms_batch([tfm], x)[0]
    torch.manual_seed(3); b = apply_tfms_batch([back], x)[0]
    assert torch.equal(a, b)


def test_pickle_lists_and_normalize():
    tfms = get_transforms(flip_vert=True) + (rand_pad(3, 28),)
    assert repr(pickle.loads(pickle.dumps(tfms))) == repr(tfms)
    norm = pickle.loads(pickle.dumps(Normalize(*imagenet_stats, do_y=True)))
    assert norm.do_y and torch.allclose(norm.std, torch.tensor(imagenet_stats[1]))


@pytest.mark.parametrize('name', SIZED)
@pytest.mark.parametrize('dtype', [torch.uint8, torch.float32])
def test_p0_changes_nothing(name, dtype):
    tfm = ALL_TFMS[name]()
    tfm.p = 0.
    x = torch.randint(0, 256, (6, 3, 9, 11), dtype=torch.uint8).to(dtype)
    y = torch.randint(0, 4, (6, 1, 9, 11))
    xo, yo = apply_tfms_batch([tfm], x, y, tfm_y=True)
    assert torch.equal(xo, x) and torch.equal(yo, y)
    xo, yo = apply_tfms([tfm], x[0], y[0], tfm_y=True)
    assert torch.equal(xo, x[0]) and torch.equal(yo, y[0])


@pytest.mark.parametrize('name', list(ALL_TFMS))
@pytest.mark.parametrize('dtype', [torch.uint8, torch.float32])
def test_dtype_kept(name, dtype):
    x = torch.randint(0, 256, (5, 3, 10, 10), dtype=torch.uint8)
    x = x if dtype == torch.uint8 else x.float() / 255
    y = torch.randint(0, 3, (5, 1, 10, 10))
    xo, yo = apply_tfms_batch([ALL_TFMS[name]()], x, y, tfm_y=True)
    assert (xo.dtype, yo.dtype, type(xo), type(yo)) == (dtype, torch.int64, torch.Tensor, torch.Tensor)
    xi, yi = apply_tfms([ALL_TFMS[name]()], x[0], y[0], tfm_y=True)
    assert (xi.dtype, yi.dtype, xi.shape[1:], yi.shape[1:]) == (dtype, torch.int64, xo.shape[2:], yo.shape[2:])
    if dtype == torch.float32: assert 0 <= xo.min() and xo.max() <= 1


@pytest.mark.parametrize('name', GEOMETRIC + ['get_transforms'])
def test_image_and_mask_share_geometry(name):
    "With nearest sampling for the image too, the image stays exactly 5 × its mask, item by item and on a batch."
    tfms = get_transforms(max_lighting=0, max_rotate=40, max_zoom=1.5)[0] if name == 'get_transforms' else [ALL_TFMS[name]()]
    img, msk = blocks()
    for seed in range(4):
        torch.manual_seed(seed)
        xo, yo = apply_tfms(tfms, img, msk, tfm_y=True, mode='nearest')
        assert torch.equal(xo[:1], yo * 5) and torch.equal(xo[1], xo[2])
        xb, yb = apply_tfms_batch(tfms, img.expand(8, -1, -1, -1), msk.expand(8, -1, -1, -1), tfm_y=True, mode='nearest')
        assert torch.equal(xb[:, :1], yb * 5)


@pytest.mark.parametrize('name', GEOMETRIC)
@pytest.mark.parametrize('padding_mode', ['reflection', 'zeros', 'border'])
def test_masks_keep_their_values(name, padding_mode):
    "A long mask with an ignore value (-1) goes through bilinear settings and comes back with only its own values."
    _, msk = blocks()
    msk = msk.long().masked_fill(msk == 5, -1)
    values = set(msk.unique().tolist()) | ({0} if padding_mode == 'zeros' else set())
    torch.manual_seed(0)
    _, yo = apply_tfms_batch([ALL_TFMS[name](), brightness(change=0.9)], torch.rand(6, 3, 32, 40),
                             msk.expand(6, -1, -1, -1), tfm_y=True, padding_mode=padding_mode)
    assert set(yo.unique().tolist()) <= values


def test_lighting_on_image_targets_only():
    x = torch.rand(3, 8, 8) * 0.8 + 0.1
    xo, yo = apply_tfms([brightness(change=0.8), contrast(scale=1.5)], x, x.clone(), tfm_y=True)
    assert torch.equal(xo, yo) and not torch.allclose(xo, x)              # an image target gets the same change
    y8 = (x[:1] * 255).to(torch.uint8)
    assert torch.equal(apply_tfms([brightness(change=0.8)], x, y8, tfm_y=True)[1], y8)          # guessed: a mask
    assert not torch.equal(apply_tfms([brightness(change=0.8)], x, y8, tfm_y=True, y_is_mask=False)[1], y8)
    ym = tv_tensors.Mask(x[:1])                                           # the tv_tensor type wins over the guess
    assert torch.equal(apply_tfms([brightness(change=0.8)], x, ym, tfm_y=True)[1], x[:1])


def test_rand_pad_offsets_item_and_batch_same_range():
    "Each output is a window of the zero-padded input; both paths reach all offsets 0..2*padding."
    x = torch.arange(1, 28 * 28 + 1, dtype=torch.float32).view(1, 28, 28)   # all values distinct and non-zero
    windows = torch.nn.functional.pad(x, (3, 3, 3, 3)).unfold(1, 28, 1).unfold(2, 28, 1)[0]   # [7, 7, 28, 28]

    def offsets(outs):
        hits = (windows[None] == outs[:, 0, None, None]).flatten(-2).all(-1)      # [N, 7, 7]
        assert torch.equal(hits.flatten(1).sum(1), torch.ones(len(outs), dtype=torch.long))
        flat = hits.flatten(1).float().argmax(1)
        return flat // 7, flat % 7

    tfms = rand_pad(padding=3, size=28, mode='zeros')
    torch.manual_seed(0)
    rb, cb = offsets(apply_tfms_batch(tfms, x.expand(700, 1, 28, 28))[0])
    ri, ci = offsets(torch.stack([apply_tfms(tfms, x)[0] for _ in range(700)]))
    for o in (rb, cb, ri, ci):
        counts = torch.bincount(o, minlength=7)
        assert len(counts) == 7 and counts.min() > 60                       # uniform over 0..6: 100 expected each
    assert abs(rb.float().mean() - ri.float().mean()) < 0.4


def test_seeding_repeats():
    x = torch.randint(0, 256, (16, 3, 20, 20), dtype=torch.uint8)
    tfms = get_transforms()[0] + [v2.RandomErasing(p=1.)]
    torch.manual_seed(7); a = apply_tfms(tfms, x[0], size=15)[0]
    torch.manual_seed(7); b = apply_tfms(tfms, x[0], size=15)[0]
    assert torch.equal(a, b)
    torch.manual_seed(7); a = apply_tfms_batch(get_transforms()[0], x)[0]
    torch.manual_seed(7); b = apply_tfms_batch(get_transforms()[0], x)[0]
    torch.manual_seed(8); c = apply_tfms_batch(get_transforms()[0], x)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize('size', [15, 16, (9, 17), (31, 7)])
@pytest.mark.parametrize('method', ['crop', 'pad', 'squish', None])
@pytest.mark.parametrize('shape', [(23, 41), (40, 21), (10, 10)])
def test_sizes(size, method, shape):
    x, y = torch.rand(3, *shape), torch.randint(0, 5, (1, *shape))
    hw = size if isinstance(size, tuple) else (size, size)
    for tfms in ([], get_transforms()[0]):
        xo, yo = apply_tfms(tfms, x, y, size=size, resize_method=method, tfm_y=True)
        assert xo.shape == (3, *hw) and yo.shape == (1, *hw)


def test_crop_keeps_aspect_ratio():
    "'crop' resizes the short side to the size, so a centred crop of a stretched square shows the whole height."
    x = torch.zeros(1, 20, 40); x[:, :, 10:30] = 1          # a white square in the middle of a wide image
    xo = apply_tfms([], x, size=10, resize_method='crop')[0]
    assert xo[..., 1:-1].min() > 0.999 and xo.min() > 0.8     # only the antialiased edge columns blend
    xs = apply_tfms([], x, size=(10, 10))[0]                  # squish: the whole image, squeezed
    assert xs[:, :, 0].max() < 0.5 < xs[:, :, 5].min()


def test_image_to_image_targets_of_another_size():
    "Super-resolution: a 24×32 input and its 48×64 target both end at `size`, with the same flip."
    hr = torch.rand(3, 48, 64)
    lr = torch.nn.functional.interpolate(hr[None], scale_factor=0.5, mode='area')[0]
    xo, yo = apply_tfms([flip_lr(p=1.)], lr, hr, size=(16, 20), tfm_y=True)
    assert xo.shape == yo.shape == (3, 16, 20)
    assert torch.allclose(xo, yo, atol=0.1)


def test_shapes_without_channel():
    x, y = torch.rand(3, 12, 12), torch.randint(0, 3, (12, 12))
    assert apply_tfms([rotate()], x, y, tfm_y=True, size=8)[1].shape == (8, 8)
    assert apply_tfms_batch([flip_lr()], x[None].expand(4, -1, -1, -1), y.expand(4, -1, -1), tfm_y=True)[1].shape == (4, 12, 12)
    assert apply_tfms([], x, 3, tfm_y=True)[1] == 3                 # a class label is passed through


def test_can_batch():
    assert can_batch(rand_pad(3, 28)) and can_batch(get_transforms()[0]) and can_batch([])
    assert not can_batch([], size=28) and not can_batch([v2.RandomVerticalFlip()])


@pytest.mark.parametrize('call,msg', [
    (lambda: apply_tfms([rotate()], torch.rand(3, 8, 8), mode='cubic'), 'mode must be one of'),
    (lambda: apply_tfms([rotate()], torch.rand(3, 8, 8), padding_mode='reflect'), 'padding_mode must be one of'),
    (lambda: apply_tfms([], torch.rand(3, 8, 8), size=4, resize_method='fit'), 'resize_method must be one of'),
    (lambda: apply_tfms([lambda x: x], torch.rand(3, 8, 8)), 'neither a restorelab transform'),
    (lambda: apply_tfms([], torch.rand(8, 8), size=4), 'CHW tensor'),
    (lambda: apply_tfms_batch([], torch.rand(3, 8, 8)), 'BCHW tensor'),
    (lambda: apply_tfms_batch([v2.RandomVerticalFlip()], torch.rand(2, 3, 8, 8)), 'no batched form'),
    (lambda: apply_tfms_batch([flip_lr()], torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8), tfm_y=True), '2 inputs but 3'),
    (lambda: crop(9)(torch.rand(3, 8, 8)), 'smaller than 9×9'),
    (lambda: flip_lr(p=1.5), 'p must be in [0, 1]'),
    (lambda: pad(2, mode='reflect'), 'mode must be one of'),
    (lambda: Normalize([0.5, 0.5], [0.2]), 'differ'),
])
def test_bad_input(call, msg):
    with pytest.raises((ValueError, TypeError), match=None) as e: call()
    assert msg in str(e.value)
