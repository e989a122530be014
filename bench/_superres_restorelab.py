"""Super-resolution step benchmark, contestants 'restorelab-fp32' and 'restorelab-bf16-cl': lesson 7's training step in restorelab.

Run by superres_step.py in a fresh process (project venv); prints one JSON line. `--bf16 --channels-last` give the second
contestant (`learn.to_bf16()` then `learn.to_channels_last()`). The data is the image-to-image folder the orchestrator writes
(`lr/{train,val}` crappified inputs, `hr/{train,val}` targets), read the lesson-7 way (ImageImageList ... label_from_func ...
databunch ... normalize(imagenet_stats, do_y=True)), preloaded into memory as uint8 tensors (`preload=True`) so each batch is a
cheap index into them. Model and loss as in the lesson: `unet_learner(data, models.resnet34, pretrained=False, wd=1e-3,
loss_func=feat_loss, blur=True, norm_type=NormType.Weight)`, `feat_loss = FeatureLoss(vgg_m, blocks[2:5], [5, 15, 2])` on a
random-init vgg16_bn (no weights offline; the step costs the same).
"""
import time
T_START = time.perf_counter()
import argparse

from restorelab.all import *   # noqa: F403 (the lesson's own import line)
from restorelab.losses import FeatureLoss
from torchvision.models import vgg16_bn
import torch

import _common as C
import _unet_common as U
from _unet_restorelab import StepTimer   # the U-Net benchmark's step timer: end of one training batch to the end of the next

IMPORT_S = time.perf_counter() - T_START


def main():
    p = U.add_args(argparse.ArgumentParser(description=__doc__))
    p.add_argument('--bf16', action='store_true', help='learn.to_bf16() (bfloat16 autocast)')
    p.add_argument('--channels-last', action='store_true', help='learn.to_channels_last()')
    args = p.parse_args()
    C.set_threads(args.threads)
    set_seed(args.seed)
    name = 'restorelab-' + ('bf16' if args.bf16 else 'fp32') + ('-cl' if args.channels_last else '')

    t0 = time.perf_counter()
    path = Path(args.path)
    path_lr, path_hr = path/'lr', path/'hr'
    data = (ImageImageList.from_folder(path_lr, preload=True)
            .split_by_folder(train='train', valid='val')
            .label_from_func(lambda x: path_hr/x.parent.name/x.name)
            .databunch(bs=args.bs, device='cpu')
            .normalize(imagenet_stats, do_y=True))
    setup_s = time.perf_counter() - t0
    U.check_batches(len(data.train_dl), args, name)
    if not isinstance(data.train_dl.dl, TensorBatchLoader):
        raise RuntimeError(f'{name}: the data is not preloaded into memory (train loader is {type(data.train_dl.dl).__name__})')

    t0 = time.perf_counter()
    # the lesson's feature loss; vgg16_bn(True) in the lesson, random weights here (same cost per step)
    vgg_m = vgg16_bn(weights=None).features.eval()
    requires_grad(vgg_m, False)
    blocks = [i - 1 for i, o in enumerate(children(vgg_m)) if isinstance(o, nn.MaxPool2d)]
    if blocks[2:5] != U.SR_LAYER_IDS: raise RuntimeError(f'{name}: vgg16_bn feature layers {blocks[2:5]}, expected {U.SR_LAYER_IDS}')
    feat_loss = FeatureLoss(vgg_m, blocks[2:5], U.SR_LAYER_WGTS)
    # n_classes=3: restorelab's ImageList labels have no `c` (fastai v1's ImageList sets c=3), so data.c is None here
    learn = unet_learner(data, models.resnet34, pretrained=False, wd=U.SR_WD, loss_func=feat_loss, blur=True,
                         norm_type=NormType.Weight, n_classes=U.SR_N_OUT, silent=True)
    if args.bf16: learn.to_bf16()
    if args.channels_last: learn.to_channels_last()
    build_s = time.perf_counter() - t0

    timer = StepTimer()
    learn.fit_one_cycle(1, max_lr=U.MAX_LR, moms=U.MOMS, div_factor=U.DIV, pct_start=U.SR_PCT_START, final_div=U.FINAL_DIV,
                        callbacks=[timer])
    U.report(name, step_times=timer.steps, fetch_times=timer.fetches, args=args, setup_s=setup_s, build_s=build_s,
             import_s=IMPORT_S, model=learn.model, losses=timer.losses, img_size=learn.model.img_size, n_classes=U.SR_N_OUT,
             amp_dtype=str(learn.amp_dtype), loss_func=type(learn.loss_func).__name__,
             loss_memory_format=U.memory_format(learn.loss_func.m_feat),
             optimizer=f'{type(learn.opt.opt).__name__} betas {learn.opt.param_groups[0]["betas"][1]} (beta2) via OptimWrapper, '
                       f'true_wd {learn.wd}')


if __name__ == '__main__': main()
