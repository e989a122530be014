"The Learner on small image data: predictions, reconstruction, plots, mixed precision, channels_last, summary."
import matplotlib
matplotlib.use('Agg')
import numpy as np
import pytest
import torch
from torch import nn
from PIL import Image as PILImage

from restorelab.data.core import Category
from restorelab.data.bunch import DatasetType
from restorelab.data.vision import ImageList, ImageImageList, Image, open_image
from restorelab.data.transforms import rand_pad
from restorelab.data.bunch import imagenet_stats
from restorelab.layers import conv_layer, res_block, Flatten
from restorelab.learner import Learner
from restorelab.losses import MSELossFlat
from restorelab.metrics import accuracy, error_rate


def _digits(root, n=12, size=12):
    "Two classes that are easy to tell apart: dark and bright squares with some noise."
    rng = np.random.default_rng(0)
    for split, k in (('train', n), ('valid', n // 2)):
        for c, level in (('dark', 40), ('bright', 200)):
            (root/split/c).mkdir(parents=True, exist_ok=True)
            for i in range(k):
                arr = np.clip(level + rng.normal(0, 20, (size, size)), 0, 255).astype(np.uint8)
                PILImage.fromarray(arr).save(root/split/c/f'{i}.png')
    return root


def _model():
    return nn.Sequential(conv_layer(1, 8, stride=2), res_block(8), conv_layer(8, 2, stride=2),
                         nn.AdaptiveAvgPool2d(1), Flatten())


@pytest.fixture
def learn(tmp_path):
    data = (ImageList.from_folder(_digits(tmp_path), convert_mode='L').split_by_folder().label_from_folder()
            .transform(([*rand_pad(2, 12, mode='zeros')], [])).databunch(bs=8).normalize())
    return Learner(data, _model(), loss_func=nn.CrossEntropyLoss(), metrics=[accuracy, error_rate], silent=True)


def test_fit_predict_and_results(learn, tmp_path):
    learn.fit_one_cycle(4, 0.05)
    loss, acc, err = learn.validate()
    assert acc > 0.9 and abs(acc + err - 1) < 1e-6
    cat, idx, probs = learn.predict(open_image(tmp_path/'valid'/'bright'/'0.png', convert_mode='L'))
    assert isinstance(cat, Category) and str(cat) == 'bright' and int(idx) == learn.data.classes.index('bright')
    assert probs.shape == (2,) and abs(float(probs.sum()) - 1) < 1e-5
    preds, targs = learn.get_preds(DatasetType.Valid)
    assert preds.shape == (12, 2) and targs.shape == (12,)
    cats = learn.pred_batch(reconstruct=True)
    assert all(isinstance(c, Category) for c in cats)
    assert learn.show_results(rows=2) is None   # drawn, not returned (a notebook would show it twice)
    fig = learn.show_results(rows=2, return_fig=True)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 4
    learn.recorder.plot_losses(); learn.recorder.plot_lr(show_moms=True); learn.recorder.plot_metrics()


def test_summary_lists_layers(learn):
    s = learn.summary()
    assert 'Conv2d' in s and '[8, 8, 6, 6]' in s
    assert f'Total params: {sum(p.numel() for p in learn.model.parameters()):,}' in s


def test_bf16_and_channels_last_train_on_cpu(learn):
    learn.to_bf16().to_channels_last()
    learn.fit_one_cycle(3, 0.05)
    assert learn.validate()[1] > 0.8
    assert learn.model[0][0].weight.dtype == torch.float32          # weights stay fp32 under autocast
    assert learn.model[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match='CUDA'):
        if not torch.cuda.is_available(): learn.to_fp16()
        else: raise RuntimeError('CUDA present: to_fp16 is tested on the GPU machine')


def test_show_batch_and_one_batch(learn):
    xb, yb = learn.data.one_batch(denorm=True)
    assert xb.min() >= -1e-4 and xb.max() <= 1 + 1e-4            # denormalised back to [0, 1]
    assert learn.data.show_batch(rows=2) is None
    fig = learn.data.show_batch(rows=2, return_fig=True)
    assert len(fig.axes) == 4


def test_image_to_image_denormalises_targets(tmp_path):
    lr, hr = tmp_path/'lr', tmp_path/'hr'
    lr.mkdir(); hr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        arr = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        PILImage.fromarray(arr).save(lr/f'{i}.png'); PILImage.fromarray(255 - arr).save(hr/f'{i}.png')
    data = (ImageImageList.from_folder(lr).split_by_rand_pct(0.2, seed=42).label_from_func(lambda x: hr/x.name)
            .databunch(bs=4).normalize(imagenet_stats, do_y=True))
    # the normalised target batch, denormalised, is the target image
    xb, yb = next(iter(data.fix_dl))
    name = data.fix_ds.x.items[0].name
    target = open_image(hr/name).px
    mean, std = (torch.tensor(s).view(3, 1, 1) for s in imagenet_stats)
    assert torch.allclose(yb[0] * std + mean, target, atol=1e-5)
    learn = Learner(data, nn.Conv2d(3, 3, 1), loss_func=MSELossFlat(), silent=True)
    imgs = learn.pred_batch(batch=(xb, yb), reconstruct=True)
    assert isinstance(imgs[0], Image) and imgs[0].shape == (3, 8, 8)
    img, _, raw = learn.predict(open_image(lr/name))
    assert isinstance(img, Image) and torch.allclose(img.px, imgs[0].px, atol=1e-4)
    imgs[0].save(tmp_path/'pred.png')
    assert open_image(tmp_path/'pred.png').shape == (3, 8, 8)
    fig = learn.show_results(rows=2, return_fig=True)
    assert [ax.get_title() for ax in fig.axes[:3]] == ['Input', 'Prediction', 'Target']
