"""GPU check, the measuring half of bench/gpu_check.sh: one fp16 and one bf16 epoch of the MNIST lesson and of a U-Net,
and lesson 7's super-resolution training step at 128 px, on CUDA; prints one JSON line per measurement.

    python bench/gpu_check.py [--quick]

MNIST is the full set when `RESTORELAB_ARCHIVE` names a folder with mnist_png.tgz, else the sample shipped in the
repository (the table says which). The U-Net and super-resolution inputs are generated: their speed does not depend
on what the pictures show. Without CUDA it prints one line saying so and exits 0. A benchmark: it asserts no time.
"""
import argparse, json, os, sys, tempfile, time
from pathlib import Path

import torch


def _line(**kw): print(json.dumps(kw), flush=True)


def _timed_fit(learn, epochs: int = 1, lr=1e-3):
    torch.cuda.synchronize(); t0 = time.perf_counter()
    learn.fit_one_cycle(epochs, lr)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def mnist(precision: str, quick: bool):
    from restorelab.all import (untar_data, URLs, ImageList, rand_pad, conv_layer, res_block, Learner, accuracy, nn)
    try: path, which = untar_data(URLs.MNIST, show_progress=False), 'full MNIST (60,000 train)'
    except Exception: path, which = untar_data(URLs.MNIST_TINY, show_progress=False), 'shipped sample'
    data = (ImageList.from_folder(path, convert_mode='L').split_by_folder(train='training', valid='testing')
            .label_from_folder().transform(([*rand_pad(3, 28, mode='zeros')], [])).databunch(bs=128, device='cuda')
            .normalize())
    conv2 = lambda ni, nf: conv_layer(ni, nf, stride=2)
    conv_and_res = lambda ni, nf: nn.Sequential(conv2(ni, nf), res_block(nf))
    model = nn.Sequential(conv_and_res(1, 8), conv_and_res(8, 16), conv_and_res(16, 32), conv_and_res(32, 16),
                          conv2(16, 10), nn.Flatten())
    learn = Learner(data, model, metrics=accuracy, silent=True)
    getattr(learn, f'to_{precision}')()
    secs = _timed_fit(learn, 1, 0.05)
    n = len(data.train_dl) * data.train_dl.batch_size
    _line(what=f'MNIST lesson epoch, {precision}', data=which, seconds=round(secs, 2), img_s=round(n / secs),
          valid_acc=round(float(learn.recorder.metrics[-1][0]), 4))


def unet(precision: str, quick: bool, tmp: Path):
    from restorelab.all import SegmentationItemList, unet_learner, models, get_transforms
    from restorelab.test_utils import synth_segmentation
    path = synth_segmentation(tmp/f'seg-{precision}', n_train=32 if quick else 128, n_valid=16, size=(192, 256), n_classes=8)
    codes = (path/'codes.txt').read_text().split()
    data = (SegmentationItemList.from_folder(path/'train').split_none()
            .label_from_func(lambda x: path/'trainannot'/x.name, classes=codes)
            .databunch(bs=8, device='cuda'))
    learn = unet_learner(data, models.resnet34, pretrained=False, silent=True)
    getattr(learn, f'to_{precision}')()
    secs = _timed_fit(learn, 1, 1e-3)
    n = len(data.train_dl) * data.train_dl.batch_size
    _line(what=f'U-Net (resnet34) epoch at 192x256, {precision}', data=f'{n} generated images', seconds=round(secs, 2),
          img_s=round(n / secs))


def superres_step(quick: bool, tmp: Path):
    "Lesson 7's generator step at 128 px (bs 32, feature loss on vgg16_bn), fp16, in images per second."
    from restorelab.all import (ImageImageList, unet_learner, models, NormType, imagenet_stats, requires_grad, children,
                                nn, Callback)
    from restorelab.feature_loss import FeatureLoss
    from torchvision.models import vgg16_bn
    from PIL import Image
    import numpy as np
    rng = np.random.default_rng(0)
    n = 32 * (3 if quick else 8)
    for kind in ('lr', 'hr'):
        (tmp/'sr'/kind).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp/'sr'/'hr'/f'{i}.png'); Image.fromarray(img // 2).save(tmp/'sr'/'lr'/f'{i}.png')
    data = (ImageImageList.from_folder(tmp/'sr'/'lr', preload=True).split_none()
            .label_from_func(lambda x: tmp/'sr'/'hr'/x.name).databunch(bs=32, device='cuda')
            .normalize(imagenet_stats, do_y=True))
    vgg_m = vgg16_bn(weights=None).features.cuda().eval()
    requires_grad(vgg_m, False)
    blocks = [i - 1 for i, o in enumerate(children(vgg_m)) if isinstance(o, nn.MaxPool2d)]
    learn = unet_learner(data, models.resnet34, pretrained=False, wd=1e-3, blur=True, norm_type=NormType.Weight,
                         self_attention=True, loss_func=FeatureLoss(vgg_m, blocks[2:5], [5, 15, 2]), silent=True)
    learn.to_fp16()

    class StepTimes(Callback):
        def __init__(self): self.times = []
        def before_batch(self, learn): torch.cuda.synchronize(); self.t0 = time.perf_counter()
        def after_batch(self, learn):
            if learn.training: torch.cuda.synchronize(); self.times.append(time.perf_counter() - self.t0)
    timer = StepTimes()
    learn.fit(1, 1e-3, callbacks=[timer])
    steps = sorted(timer.times[2:])   # the first steps include cuDNN's autotuning
    med = steps[len(steps) // 2]
    _line(what='lesson 7 super-resolution step, 128 px, bs 32, fp16', data='generated', seconds=round(med, 4),
          img_s=round(32 / med), note='the 2018 lesson ran about 100 img/s on its GPU')


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--quick', action='store_true', help='smaller generated sets (a smoke run)')
    args = p.parse_args()
    if not torch.cuda.is_available():
        _line(what='gpu check', skipped='no CUDA device: nothing measured'); return
    _line(what='device', name=torch.cuda.get_device_name(0), count=torch.cuda.device_count(), torch=torch.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for precision in ('fp16', 'bf16'):
            for job in (lambda: mnist(precision, args.quick), lambda: unet(precision, args.quick, tmp)):
                try: job()
                except Exception as e: _line(what=f'{precision} epoch', failed=f'{type(e).__name__}: {e}')
        try: superres_step(args.quick, tmp)
        except Exception as e: _line(what='super-resolution step', failed=f'{type(e).__name__}: {e}')


if __name__ == '__main__': main()
