"""Super-resolution at a scale (lesson 14): LR/HR folders made by `Downscale`, data whose target is `scale` times its
input, `SrResnet` trained x2 then loaded into x4 (progressive upscaling), and inference at the scale: `predict`, tiles,
`export`/`load_learner` and `restorelab restore`."""
import warnings

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from restorelab.cli import main
from restorelab.crappify import Crappifier, Downscale, crappify_folder
from restorelab.data.augment import get_transforms
from restorelab.data.bunch import imagenet_stats
from restorelab.data.external import URLs, untar_data
from restorelab.data.vision import ImageImageList, open_image
from restorelab.learner import Learner
from restorelab.losses import MSELossFlat
from restorelab.metrics import imresize, psnr
from restorelab.models.srresnet import SrResnet, srresnet_split
from restorelab.models.style import StyleResnet
from restorelab.pretrained import load_pretrained, pretrained_file, pretrained_models
from restorelab.vision.learner import load_learner

SIZES = [(41, 53), (40, 52), (45, 60), (44, 57), (42, 50), (43, 55)]   # (h, w): odd and even sides


def _smooth(rng, h, w):
    "A smooth RGB photo stand-in (sums of low-frequency waves), so that interpolations are meaningful."
    yy, xx = np.mgrid[0:h, 0:w] / 9.
    chans = [np.sin(xx * rng.uniform(0.5, 2) + rng.uniform(0, 6)) * np.cos(yy * rng.uniform(0.5, 2)) for _ in range(3)]
    return ((np.stack(chans, -1) * 0.5 + 0.5) * 255).round().astype(np.uint8)


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    "hr/ photos of odd and even sizes, lr_x2/ and lr_x4/ made from them with Downscale."
    root = tmp_path_factory.mktemp('sr')
    rng = np.random.default_rng(0)
    (root/'hr').mkdir()
    for k, (h, w) in enumerate(SIZES): PILImage.fromarray(_smooth(rng, h, w)).save(root/'hr'/f'{k}.png')
    for s in (2, 4): crappify_folder(root/'hr', root/f'lr_x{s}', Crappifier([Downscale(s)]), max_workers=1)
    return root


def _data(root, scale, size=None, tfms=None, bs=2):
    return (ImageImageList.from_folder(root/f'lr_x{scale}').split_by_idx([0, 1])
            .label_from_func(lambda x: root/'hr'/x.name)
            .transform(tfms or ([], []), size=size, tfm_y=True, scale=scale)
            .databunch(bs=bs).normalize(imagenet_stats, do_y=True))


def test_downscale_folder_sizes(folders):
    for s in (2, 4):
        for k, (h, w) in enumerate(SIZES):
            with PILImage.open(folders/f'lr_x{s}'/f'{k}.png') as im: assert im.size == (w // s, h // s)


@pytest.mark.parametrize('scale,size', [(2, 8), (4, 6), (2, None)])
def test_batches_at_two_scales(folders, scale, size):
    torch.manual_seed(0)
    data = _data(folders, scale, size, tfms=get_transforms(max_rotate=20, max_warp=0.2) if size else None, bs=1 if size is None else 2)
    xb, yb = data.one_batch()
    assert yb.shape[-2:] == tuple(scale * n for n in xb.shape[-2:])
    if size: assert xb.shape[-2:] == (size, size)
    # unaugmented validation items: the target shrunk back with a box filter is close to the input (bicubic LR ~ box)
    x, y = data.valid_ds.item_tensors(0)
    box = torch.nn.functional.avg_pool2d(y[None].float(), scale)[0]
    assert (box - x.float()).abs().mean() < 6, (box - x.float()).abs().mean()


def test_target_of_the_wrong_size_names_both_files(folders, tmp_path):
    hr = tmp_path/'hr'
    hr.mkdir()
    for f in (folders/'hr').iterdir(): (hr/f.name).write_bytes(f.read_bytes())
    PILImage.new('RGB', (30, 30)).save(hr/'3.png')   # lr_x2/3.png is 28x22
    data = (ImageImageList.from_folder(folders/'lr_x2').split_by_idx([0])
            .label_from_func(lambda x: hr/x.name).transform(([], []), tfm_y=True, scale=2))
    with pytest.raises(ValueError, match=r'target .*3\.png is 30x30 but its input .*3\.png is 22x28: with scale=2'):
        data.train.item_tensors(2)
    with pytest.raises(ValueError, match='tfm_y=True'):
        data.transform(([], []), tfm_y=False, scale=2)
    with pytest.raises(ValueError, match='whole number >= 1'):
        data.transform(([], []), tfm_y=True, scale=0)


def test_progressive_upscaling_x2_into_x4(folders):
    "The lesson's progressive upscaling: x2 weights into a x4 model (strict=False), then only the new upsampler trains."
    learn2 = Learner(_data(folders, 2, 8), SrResnet(nf=8, scale=2, n_res=1), loss_func=MSELossFlat(), silent=True)
    learn2.fit(1, 1e-3)
    learn2.save('x2')
    learn4 = Learner(_data(folders, 4, 6), SrResnet(nf=8, scale=4, n_res=1), loss_func=MSELossFlat(), silent=True,
                     path=learn2.path)
    learn4.split(srresnet_split)
    with pytest.raises(RuntimeError, match=r"missing keys \['features.3.2.0.weight'"):
        learn4.load('x2')
    learn4.load('x2', strict=False, with_opt=False)
    sd2, sd4 = learn2.model.state_dict(), learn4.model.state_dict()
    assert all(torch.equal(sd2[k], sd4[k]) for k in sd2)
    learn4.freeze()
    body, head = learn4.layer_groups
    assert not any(p.requires_grad for p in body.parameters()) and all(p.requires_grad for p in head.parameters())
    before = {k: v.clone() for k, v in learn4.model.state_dict().items()}
    learn4.fit(1, 1e-3)
    after = learn4.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(('features.3.', 'features.4.', 'features.5.')) for k in changed), sorted(changed)
    assert 'features.3.2.0.weight' in changed   # the new x4 stage trained


def test_inference_at_the_scale(folders, tmp_path):
    "predict, tiled predict, export/load_learner and `restorelab restore` all give the x2 image."
    # no residual blocks: a receptive field of 3.5 LR pixels, within the tiles' zero margin (overlap 16 // 4 = 4)
    learn = Learner(_data(folders, 2, 8), SrResnet(nf=8, scale=2, n_res=0), loss_func=MSELossFlat(), silent=True,
                    path=tmp_path)
    learn.fit(1, 1e-3)
    learn.data = _data(folders, 2, bs=1)   # (as the lessons do) data without `size=`: predict at each image's own size
    img = open_image(folders/'lr_x2'/'3.png')
    h, w = img.shape[-2:]
    out = learn.predict(img)[2]
    assert out.shape == (3, 2 * h, 2 * w)
    tiled = learn.predict(img, tile=20, overlap=16)[2]
    assert (tiled - out).abs().max() < 1e-4
    learn.export('sr.pth')
    inf = load_learner(tmp_path, 'sr.pth')
    assert isinstance(inf.model, SrResnet) and inf.model.scale == 2
    assert (inf.predict(img)[2] - out).abs().max() < 1e-5
    out_dir = tmp_path/'restored'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert main(['restore', str(folders/'lr_x2'), str(out_dir), '--model', str(tmp_path/'sr.pth'), '--tile', '20',
                     '--overlap', '16']) == 0
    for k, (hh, ww) in enumerate(SIZES):
        with PILImage.open(out_dir/f'{k}.png') as im: assert im.size == (ww // 2 * 2, hh // 2 * 2)
    restored = np.asarray(PILImage.open(out_dir/'3.png'), dtype=np.float32) / 255
    assert np.abs(restored - out.permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6


def test_style_resnet_exports(folders, tmp_path):
    data = (ImageImageList.from_folder(folders/'hr').split_by_idx([0, 1]).label_from_func(lambda x: x)
            .transform(([], []), size=48, tfm_y=True).databunch(bs=2).normalize(imagenet_stats, do_y=True))
    learn = Learner(data, StyleResnet(), loss_func=MSELossFlat(), silent=True, path=tmp_path)
    learn.fit(1, 1e-4)
    learn.export('style.pth')
    img = open_image(folders/'hr'/'0.png')
    assert (load_learner(tmp_path, 'style.pth').predict(img)[2] - learn.predict(img)[2]).abs().max() < 1e-5


def test_shipped_models_by_name(folders, tmp_path, monkeypatch, capsys):
    "A model in the package's models folder loads by name: load_pretrained, `restore --model NAME`, `--list-models`."
    import restorelab.pretrained as pretrained
    models_dir = tmp_path/'models'
    learn = Learner(_data(folders, 2, 8), SrResnet(nf=8, scale=2, n_res=1), loss_func=MSELossFlat(), silent=True,
                    path=tmp_path)
    learn.export(models_dir/'tiny-x2.pth', half=True, info=dict(data='6 smooth test images', valid_psnr=12.5))
    monkeypatch.setattr(pretrained, 'MODELS_DIR', models_dir)
    assert main(['restore', '--list-models']) == 0
    assert 'tiny-x2: data: 6 smooth test images; valid_psnr: 12.5' in capsys.readouterr().out
    inf = pretrained.load_pretrained('tiny-x2')
    img = open_image(folders/'lr_x2'/'0.png')
    assert inf.predict(img, tile=64)[0].shape == (3, 2 * img.shape[1], 2 * img.shape[2])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert main(['restore', str(folders/'lr_x2'), str(tmp_path/'out'), '--model', 'tiny-x2']) == 0
        assert main(['restore', str(folders/'lr_x2'), str(tmp_path/'out2'), '--model', 'tiny-x3']) == 2
    assert "no shipped model named 'tiny-x3'; the shipped models are ['tiny-x2']" in capsys.readouterr().err
    with PILImage.open(tmp_path/'out'/'0.png') as im: assert im.size == (SIZES[0][1] // 2 * 2, SIZES[0][0] // 2 * 2)
    with pytest.raises(SystemExit):
        main(['restore', str(folders/'lr_x2')])
    assert 'OUT_DIR, --model required (or --list-models)' in capsys.readouterr().err


def test_preload_serves_the_item_by_item_path(tmp_path, monkeypatch):
    "preload=True decodes each image once, also when targets at another scale go item by item (no batched path)."
    import restorelab.data.vision as vision
    rng = np.random.default_rng(0)
    for sub, s in (('lr', 16), ('hr', 32)):
        (tmp_path/sub).mkdir()
        for k in range(6): PILImage.fromarray(rng.integers(0, 255, (s, s, 3), np.uint8)).save(tmp_path/sub/f'{k}.png')
    data = (ImageImageList.from_folder(tmp_path/'lr', preload=True).split_by_idx([0])
            .label_from_func(lambda x: tmp_path/'hr'/x.name)
            .transform(([], []), size=8, resize_method='no', tfm_y=True, scale=2).databunch(bs=2))
    data.one_batch()   # the first use loads both lists
    reads = []
    real = vision.read_image_tensor
    monkeypatch.setattr(vision, 'read_image_tensor', lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    for _ in range(3): xb, yb = data.one_batch()
    assert reads == [] and yb.shape[-2:] == (16, 16)


@pytest.mark.parametrize('name,scale', [('srresnet-x2', 2), ('srresnet-x4', 4)])
def test_the_shipped_srresnets(name, scale, tmp_path):
    "The trained models that ship: small files that say what they are, and that beat bicubic on photos they never saw."
    assert pretrained_file(name).stat().st_size < 3 * 2**20
    info = pretrained_models()[name]
    assert info['scale'] == scale and 'Pets' in info['data'] and info['valid_psnr_y'] > 20
    learn = load_pretrained(name)
    # photos of the repository's Pets sample that were validation photos of the lesson's split (never trained on)
    names = ['Abyssinian_101.jpg', 'Egyptian_Mau_10.jpg', 'newfoundland_10.jpg']
    photos, gains = untar_data(URLs.PETS_TINY)/'images', []
    for n in names:
        hr = Downscale(2)(PILImage.open(photos/n))     # as the lesson made its HR photos: the photos at half size
        Downscale(scale)(hr).save(tmp_path/f'{n}.png')  # and its LR copies
        lr = np.asarray(PILImage.open(tmp_path/f'{n}.png'))
        hr = np.asarray(hr)[:lr.shape[0] * scale, :lr.shape[1] * scale]
        out = learn.predict(open_image(tmp_path/f'{n}.png'), tile=128, overlap=16)[0].to_uint8().permute(1, 2, 0).numpy()
        assert out.shape == hr.shape
        gains.append(psnr(out, hr, scale, test_y_channel=True) - psnr(imresize(lr, scale), hr, scale, test_y_channel=True))
    assert np.mean(gains) > 0.5, gains   # recorded: x2 1.34/0.94/1.40 dB, x4 0.81/0.58/0.84 dB
