"""`restorelab.tiling`: tiled inference equals untiled inference for models whose receptive field fits in the window's
zero margin, for any image size, scale, channel count and batch of tiles; the image stays on the host; modes are restored."""
import random

import pytest
import torch
from torch import nn

from restorelab.tiling import tile_slices, blend_window, predict_tiled

TOL = 1e-4


def conv_net(c_in=3, c_out=4, n_convs=3, c=8, seed=0):
    "n_convs 3x3 convs (receptive-field radius n_convs) with BatchNorm between them, BN statistics moved off their defaults."
    torch.manual_seed(seed)
    layers, ni = [], c_in
    for _ in range(n_convs - 1):
        layers += [nn.Conv2d(ni, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
        ni = c
    model = nn.Sequential(*layers, nn.Conv2d(ni, c_out, 3, padding=1))
    model.train()(torch.randn(4, c_in, 24, 24))   # running stats != (0, 1), so eval and train mode give different outputs
    return model


def untiled(model, img):
    with torch.no_grad(): return model.eval()(img[None])[0]


class Spy(nn.Module):
    "Wraps a model; records the shape and device of every input."
    def __init__(self, model, multiple=1):
        super().__init__()
        self.model, self.multiple, self.seen = model, multiple, []

    def forward(self, x):
        self.seen.append((tuple(x.shape), x.device.type))
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f'sizes must be multiples of {self.multiple}')
        return self.model(x)


# ---- tile_slices ----
@pytest.mark.parametrize('tile,overlap,multiple', [(128, 32, 1), (128, 32, 16), (64, 0, 1), (100, 33, 8), (5, 4, 1), (512, 64, 32)])
def test_tile_slices_cover_with_overlap(tile, overlap, multiple):
    rng = random.Random(0)
    for size in [1, 2, tile - 1, tile, tile + 1, 2 * tile, 250, 375, 1280, 1600] + [rng.randint(1, 3000) for _ in range(30)]:
        if size < 1: continue
        sl = tile_slices(size, tile, overlap, multiple)
        assert (sl[0].start, sl[-1].stop) == (0, size)
        lengths = {s.stop - s.start for s in sl}
        assert len(lengths) == 1 and 1 <= lengths.pop() <= max(tile, 1)
        assert all(b.start > a.start for a, b in zip(sl, sl[1:]))
        assert all(a.stop - b.start >= overlap for a, b in zip(sl, sl[1:]))   # overlaps at least `overlap` (so no gaps)
        if size > tile:   # the fewest tiles of length <= tile that can cover with that overlap
            assert len(sl) == -(-(size - overlap) // (tile - overlap))
            if tile % multiple == 0: assert (sl[0].stop - sl[0].start) % multiple == 0


def test_tile_slices_examples_and_errors():
    assert tile_slices(100, 128, 32) == [slice(0, 100)]
    assert tile_slices(1280, 1024, 64) == [slice(0, 672), slice(608, 1280)]
    assert tile_slices(10, 4, 1) == [slice(0, 4), slice(3, 7), slice(6, 10)]
    for bad in [(100, 32, 32), (100, 32, -1), (0, 32, 8), (100, 0, 0)]:
        with pytest.raises(ValueError): tile_slices(*bad)


# ---- blend_window ----
@pytest.mark.parametrize('overlap,margin', [(32, None), (32, 0), (32, 15), (16, 3), (2, None), (0, None)])
def test_blend_window_partition_of_unity(overlap, margin):
    "Two neighbours overlapping by exactly `overlap` have weights summing to 1; zero within `margin` of the inner edge."
    n = 64
    m = overlap // 4 if margin is None else margin
    left = blend_window(1, n, overlap, margin, taper=(False, False, False, True))[0]
    right = blend_window(1, n, overlap, margin, taper=(False, False, True, False))[0]
    total = torch.zeros(2 * n - overlap)
    total[:n] += left
    total[n - overlap:] += right
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-6, rtol=0)
    if m: assert (left[-m:] == 0).all() and (right[:m] == 0).all()
    assert (left[:n - m] > 0).all() and left[0] == 1


def test_blend_window_2d():
    w = blend_window(64, 80, 32)   # margin 8 on every side, then 16-px ramps
    assert w.shape == (64, 80) and w.dtype == torch.float32
    assert (w[:8] == 0).all() and (w[-8:] == 0).all() and (w[:, :8] == 0).all() and (w[:, -8:] == 0).all()
    assert (w[8:-8, 8:-8] > 0).all() and w[32, 40] == 1 and w.max() == 1
    flat = blend_window(48, 80, 32, taper=(False, False, False, False))
    assert (flat == 1).all()
    with pytest.raises(ValueError, match='margin'): blend_window(48, 80, 16, margin=8)
    with pytest.raises(ValueError, match='margin'): blend_window(48, 80, 16, margin=-1)


# ---- predict_tiled: exactness ----
@pytest.mark.parametrize('shape,tile,overlap,batch_size', [((250, 375), 128, 32, 1), ((250, 375), 128, 32, 3),
                                                           ((97, 61), 40, 16, 1), ((64, 200), 64, 24, 2), ((129, 130), 128, 32, 1)])
def test_tiled_equals_untiled(shape, tile, overlap, batch_size):
    model = conv_net()                 # receptive-field radius 3 <= default margin (overlap // 4)
    img = torch.randn(3, *shape)
    full = untiled(model, img)
    model.train()
    out = predict_tiled(model, img, tile=tile, overlap=overlap, batch_size=batch_size)
    assert out.shape == (4, *shape) and out.dtype == torch.float32 and out.device.type == 'cpu'
    assert (out - full).abs().max() <= TOL


def test_margin_smaller_than_receptive_field_is_not_exact():
    "The exactness test can fail: a margin below the receptive-field radius lets zero-padding artefacts in."
    model = conv_net()
    img = torch.randn(3, 150, 190)
    full = untiled(model, img)
    assert (predict_tiled(model, img, tile=128, overlap=32, margin=3) - full).abs().max() <= TOL
    assert (predict_tiled(model, img, tile=128, overlap=32, margin=0) - full).abs().max() > 10 * TOL


def test_image_smaller_than_tile_is_one_forward():
    model = conv_net(c_in=1, c_out=5)
    img = torch.randn(1, 20, 30)
    assert torch.equal(predict_tiled(model, img, tile=64, overlap=16), untiled(model, img))


def test_super_resolution_scale_2():
    torch.manual_seed(1)
    sr = nn.Sequential(conv_net(3, 8, n_convs=2), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2))
    img = torch.randn(3, 101, 70)
    full = untiled(sr, img)
    out = predict_tiled(sr, img, tile=48, overlap=16, scale=2)
    assert out.shape == (3, 202, 140)
    assert (out - full).abs().max() <= TOL
    assert (predict_tiled(sr, img, tile=48, overlap=16) - out).abs().max() <= 1e-6   # scale inferred from the first tile
    with pytest.raises(ValueError, match='3 times larger'): predict_tiled(sr, img, tile=48, overlap=16, scale=3)


def test_batched_input_and_out_dtype():
    model = conv_net()
    imgs = torch.randn(2, 3, 90, 70)
    out = predict_tiled(model, imgs, tile=48, overlap=16)
    assert out.shape == (2, 4, 90, 70)
    for o, im in zip(out, imgs): assert (o - untiled(model, im)).abs().max() <= TOL
    assert predict_tiled(model, imgs[:1], tile=48, overlap=16).shape == (1, 4, 90, 70)
    assert predict_tiled(model, imgs[0], tile=48, overlap=16, out_dtype=torch.float16).dtype == torch.float16
    with pytest.raises(ValueError): predict_tiled(model, torch.randn(90, 70))


# ---- predict_tiled: what the model sees, modes, host memory ----
def test_pad_to_and_model_sees_only_tiles():
    spy = Spy(nn.Conv2d(3, 2, 3, padding=1), multiple=8)
    small = torch.randn(3, 20, 30)
    with pytest.raises(ValueError, match='multiples of 8'): predict_tiled(spy, small)
    assert predict_tiled(spy, small, pad_to=8).shape == (2, 20, 30)
    assert spy.seen[-1][0] == (1, 3, 24, 32)            # reflection-padded, output cropped back
    spy.seen.clear()
    big = torch.randn(3, 300, 200)
    assert predict_tiled(spy, big, tile=96, overlap=16, pad_to=8, batch_size=2).shape == (2, 300, 200)
    assert len(spy.seen) == 6                           # 4 x 3 tiles, two at a time
    assert all(s[0] <= 2 and s[2] <= 96 and s[3] <= 96 and s[2] % 8 == 0 and s[3] % 8 == 0 for s, _ in spy.seen)


def test_modes_restored_and_input_untouched():
    model = conv_net()
    model.train()
    model[1].eval()                                     # a frozen BatchNorm inside a training model
    img = torch.randn(3, 100, 100)
    before = img.clone()
    predict_tiled(model, img, tile=64, overlap=16)
    assert model.training and not model[1].training and model[4].training
    assert img.device.type == 'cpu' and torch.equal(img, before)
    bad = Spy(model, multiple=7)                        # raises inside the loop: the modes come back all the same
    bad.train()
    model[1].eval()
    with pytest.raises(ValueError): predict_tiled(bad, img, tile=64, overlap=16)
    assert bad.training and model.training and not model[1].training


def test_dynamic_unet_runs_tiled():
    "A U-Net (receptive field far beyond the margin): not exact, but the right shape, finite, close to untiled."
    from restorelab.layers import conv_layer
    from restorelab.models.unet import DynamicUnet
    torch.manual_seed(0)
    body = nn.Sequential(conv_layer(3, 8, stride=2), conv_layer(8, 16, stride=2), conv_layer(16, 32, stride=2))   # a tiny stride-8 encoder
    unet = DynamicUnet(body, n_classes=3, img_size=(32, 32))
    img = torch.randn(3, 72, 120)
    full = untiled(unet, img)
    unet.train()
    out = predict_tiled(unet, img, tile=48, overlap=24, pad_to=8)
    assert out.shape == (3, 72, 120) and torch.isfinite(out).all() and unet.training and unet.encoder[0][1].training
    assert (out - full).abs().mean() < 0.5 * full.abs().mean()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_tiles_from_host():
    torch.backends.cudnn.allow_tf32 = False
    model = conv_net().cuda()
    spy = Spy(model)
    img = torch.randn(3, 250, 375)
    with torch.no_grad(): full = model.eval()(img[None].cuda())[0].cpu()
    out = predict_tiled(spy, img, tile=128, overlap=32)
    assert img.device.type == 'cpu' and out.device.type == 'cpu'
    assert all(d == 'cuda' and s[2] <= 128 and s[3] <= 128 for s, d in spy.seen)
    assert (out - full).abs().max() <= TOL
