"""Cross-checks of the paper-protocol image-quality metrics: SSIM/PSNR against scikit-image, MATLAB's imresize against
an independent loop over the kernel and against Pillow's bicubic, and the learner metrics on normalised/raw data."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from PIL import Image as PILImage
from skimage.metrics import structural_similarity, peak_signal_noise_ratio

from restorelab.data.vision import ImageImageList
from restorelab.data.bunch import imagenet_stats
from restorelab.learner import Learner
from restorelab.losses import MSELossFlat
from restorelab.metrics import imresize, rgb_to_y, psnr, ssim, PSNR, SSIM


def _pair(rng, shape, noise=20., smooth=False):
    "A uint8 image and a noisy copy; `smooth` makes the image a blurred field (large flat areas, as in photos)."
    if smooth:
        small = rng.random((shape[0] // 8 + 2, shape[1] // 8 + 2) + shape[2:]) * 255
        img = imresize(small, output_shape=shape[:2])[:shape[0], :shape[1]]
    else: img = rng.random(shape) * 255
    img = np.clip(img, 0, 255).round().astype(np.uint8)
    noisy = np.clip(img + rng.normal(0, noise, shape), 0, 255).round().astype(np.uint8)
    return noisy, img


def _sk_ssim(a, b, channel_axis=-1):
    # skimage filters with 'reflect' padding, then averages the map over the interior (a 5-pixel crop for the 11-tap
    # window): the interior of a padded filtering is exactly MATLAB's 'valid' filtering, so the two agree to rounding.
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=channel_axis)


@pytest.mark.parametrize('smooth', [False, True])
@pytest.mark.parametrize('shape', [(40, 48, 3), (23, 31, 3), (30, 30, 1)])
def test_ssim_psnr_match_skimage(shape, smooth):
    rng = np.random.default_rng(sum(shape) + smooth)
    pred, target = _pair(rng, shape, smooth=smooth)
    assert abs(ssim(pred, target) - _sk_ssim(pred, target)) < 1e-9
    assert abs(psnr(pred, target) - peak_signal_noise_ratio(target, pred, data_range=255)) < 1e-9
    # cropped and on Y: skimage on the same float arrays
    if shape[-1] == 3:
        py, ty = rgb_to_y(pred)[3:-3, 3:-3], rgb_to_y(target)[3:-3, 3:-3]
        assert abs(ssim(pred, target, crop_border=3, test_y_channel=True) - _sk_ssim(py, ty, None)) < 1e-9
        assert abs(psnr(pred, target, crop_border=3, test_y_channel=True)
                   - peak_signal_noise_ratio(ty, py, data_range=255)) < 1e-9


def test_ssim_of_grey_2d_and_tensor_batch():
    rng = np.random.default_rng(3)
    (p1, t1), (p2, t2) = _pair(rng, (32, 32)), _pair(rng, (32, 32), noise=5, smooth=True)
    assert abs(ssim(p1, t1) - _sk_ssim(p1, t1, None)) < 1e-9
    batch = lambda *xs: torch.stack([torch.from_numpy(x)[None].float() / 255 for x in xs])   # (2, 1, 32, 32)
    want = (_sk_ssim(p1, t1, None) + _sk_ssim(p2, t2, None)) / 2
    assert abs(ssim(batch(p1, p2), batch(t1, t2)) - want) < 1e-6


def test_ssim_decreases_with_noise():
    rng = np.random.default_rng(4)
    target = _pair(rng, (48, 48, 3), smooth=True)[1]
    vals = [ssim(np.clip(target + rng.normal(0, s, target.shape), 0, 255).round().astype(np.uint8), target)
            for s in (2, 8, 32)]
    assert 1 > vals[0] > vals[1] > vals[2] > 0


# ------------------------------------------------------------------ imresize
def _ref_resize_1d(sig, out_len, scale):
    "MATLAB's bicubic along one axis, written as plainly as possible: every input index the kernel reaches, mirrored."
    n, a = len(sig), -0.5
    def cubic(x):
        x = abs(x)
        if x <= 1: return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        if x <= 2: return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a
        return 0.
    k = (lambda d: scale * cubic(scale * d)) if scale < 1 else cubic
    def mirrored(j):                          # 1-based index -> 1-based pixel, symmetric padding 1..n, n..1
        m = (j - 1) % (2 * n)
        return m + 1 if m < n else 2 * n - m
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        js = range(math.floor(u) - 4 * int(max(1, 1 / scale)) - 2, math.ceil(u) + 4 * int(max(1, 1 / scale)) + 3)
        w = np.array([k(u - j) for j in js])
        out.append(sum(wi * sig[mirrored(j) - 1] for wi, j in zip(w, js)) / w.sum())
    return np.array(out)


@pytest.mark.parametrize('n,scale', [(4, 0.5), (9, 0.25), (20, 1 / 3), (17, 0.37), (5, 2.), (6, 3.), (7, 1.7), (3, 0.25)])
def test_imresize_matches_kernel_loop(n, scale):
    sig = np.random.default_rng(n).random(n) * 100
    out_len = math.ceil(n * scale - 1e-9)
    got = imresize(sig[None], scale)
    assert got.shape == (math.ceil(scale - 1e-9), out_len)
    np.testing.assert_allclose(got[0], _ref_resize_1d(sig, out_len, scale), atol=1e-10)
    np.testing.assert_allclose(imresize(sig[:, None], scale)[:, 0], _ref_resize_1d(sig, out_len, scale), atol=1e-10)


@pytest.mark.parametrize('size,scale', [((64, 60), 0.25), ((64, 60), 0.5), ((63, 60), 1 / 3), ((20, 22), 2.), ((20, 22), 3.)])
def test_imresize_interior_matches_pillow_bicubic(size, scale):
    # Pillow's bicubic is the same kernel (a = -0.5), stretched when reducing, with the same pixel-centre convention;
    # only its border handling differs (it truncates the kernel where MATLAB mirrors the image), so compare the interior.
    img = (np.random.default_rng(0).random(size) * 255).astype(np.float32)
    ours = imresize(img.astype(np.float64), scale)
    h, w = ours.shape
    assert (h, w) == tuple(math.ceil(n * scale - 1e-9) for n in size)
    pil = np.asarray(PILImage.fromarray(img, mode='F').resize((w, h), PILImage.BICUBIC))
    m = math.ceil(2 * max(1, 1 / scale) * scale) + 1
    np.testing.assert_allclose(ours[m:-m, m:-m], pil[m:-m, m:-m], atol=1e-4)
    assert np.abs(ours - pil).max() > 1e-3                   # ... while the borders do differ


@pytest.mark.parametrize('size,scale', [((10, 7), 0.5), ((13, 13), 0.25), ((9, 11), 1 / 3), ((5, 3), 4.), ((12, 8), 0.75)])
def test_imresize_shapes_and_dtypes(size, scale):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size + (3,), dtype=np.uint8)
    out = imresize(img, scale)
    assert out.dtype == np.uint8 and out.shape == tuple(math.ceil(n * scale - 1e-9) for n in size) + (3,)
    assert imresize(img[..., 0], scale).shape == out.shape[:2]
    for dt in (np.float32, np.float64):
        assert imresize(img.astype(dt) / 255, scale).dtype == dt
    # uint8 = float resize of each dimension, each rounded (MATLAB's uint8 kernel), on every channel
    np.testing.assert_array_equal(out[..., 1], imresize(img[..., 1], scale))


def test_imresize_uint8_rounds_after_each_dimension_smaller_scale_first():
    img = np.random.default_rng(2).integers(0, 256, (12, 16), dtype=np.uint8)
    out = imresize(img, output_shape=(9, 4))                 # scales 0.75 (rows) and 0.25 (columns): columns go first
    cols_first = imresize(imresize(img, output_shape=(12, 4)), output_shape=(9, 4))
    np.testing.assert_array_equal(out, cols_first)
    rows_first = imresize(imresize(img, output_shape=(9, 16)), output_shape=(9, 4))
    assert not np.array_equal(out, rows_first)               # the order is visible through the intermediate rounding
    # floats are not rounded: the order makes no difference
    f = img.astype(np.float64)
    np.testing.assert_allclose(imresize(f, output_shape=(9, 4)),
                               imresize(imresize(f, output_shape=(9, 16)), output_shape=(9, 4)), atol=1e-9)


def test_imresize_bicubic_down_up_keeps_a_smooth_image():
    rng = np.random.default_rng(5)
    hr = _pair(rng, (48, 48, 3), smooth=True)[1]
    lr = imresize(hr, 0.25)
    assert lr.shape == (12, 12, 3)
    bicubic = psnr(imresize(lr, 4.), hr, crop_border=4)
    nearest = psnr(hr[::4, ::4].repeat(4, 0).repeat(4, 1), hr, crop_border=4)
    assert bicubic > 25 and bicubic > nearest + 2
    # a bad input
    with pytest.raises(ValueError, match='exactly one'): imresize(hr)
    with pytest.raises(ValueError, match='HW or HWC'): imresize(hr[None], 0.5)


# ------------------------------------------------------------------ the learner metrics
def _pairs_dir(tmp_path, n=8, size=16):
    lr, hr = tmp_path/'lr', tmp_path/'hr'
    lr.mkdir(); hr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        PILImage.fromarray(arr).save(lr/f'{i}.png'); PILImage.fromarray(255 - arr).save(hr/f'{i}.png')
    return ImageImageList.from_folder(lr).split_by_rand_pct(0.5, seed=0).label_from_func(lambda x: hr/x.name)


@pytest.mark.parametrize('norm', [None, 'x', 'xy'])
def test_learner_metrics_equal_direct_computation(tmp_path, norm):
    data = _pairs_dir(tmp_path).databunch(bs=3)
    if norm: data.normalize(imagenet_stats, do_x=True, do_y=norm == 'xy')
    torch.manual_seed(0)
    metrics = [PSNR(crop_border=1), SSIM(test_y_channel=True)]
    learn = Learner(data, nn.Conv2d(3, 3, 3, padding=1), loss_func=MSELossFlat(), metrics=metrics, silent=True)
    learn.fit(1, 1e-2)
    _, got_psnr, got_ssim = learn.validate()
    preds, targs = [], []
    learn.model.eval()
    with torch.no_grad():
        for xb, yb in data.valid_dl:
            p = learn.model(xb)
            if norm == 'xy':
                mean, std = (torch.tensor(s).view(1, 3, 1, 1) for s in imagenet_stats)
                p, yb = p * std + mean, yb * std + mean
            to8 = lambda t: (t.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
            preds += list(to8(p)); targs += list(to8(yb))
    assert len(preds) == 4
    want_psnr = np.mean([psnr(p, t, crop_border=1) for p, t in zip(preds, targs)])
    want_ssim = np.mean([ssim(p, t, test_y_channel=True) for p, t in zip(preds, targs)])
    assert got_psnr == pytest.approx(want_psnr, abs=1e-9) and got_ssim == pytest.approx(want_ssim, abs=1e-9)
    # the mean of the images' PSNRs, not the PSNR of the pooled error
    pooled = 10 * np.log10(255 ** 2 / np.mean([((p.astype(float) - t)[1:-1, 1:-1] ** 2).mean() for p, t in zip(preds, targs)]))
    assert abs(got_psnr - pooled) > 1e-6
    assert learn.recorder.metrics_names == ['psnr', 'ssim_y']
