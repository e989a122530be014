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

from restorelab.all import *   # noqa: F403 (the lesson's own import line)
from restorelab.feature_loss import FeatureLoss
from torchvision.models import vgg16_bn

import _unet_common as U
from _unet_restorelab import parse_args, check_data, speed_levers, fit_and_report   # shared with the U-Net benchmark

IMPORT_S = time.perf_counter() - T_START


def pair_data(args, name):
    "The lesson-7 DataBunch of the orchestrator's `lr/` inputs and `hr/` targets, preloaded, both normalised; checked (gan_step.py too)."
    path = Path(args.path)
    path_lr, path_hr = path/'lr', path/'hr'
    data = (ImageImageList.from_folder(path_lr, preload=True)
            .split_by_folder(train='train', valid='val')
            .label_from_func(lambda x: path_hr/x.parent.name/x.name)
            .databunch(bs=args.bs, device='cpu')
            .normalize(imagenet_stats, do_y=True))
    check_data(data, args, name)
    return data


def main():
    args, name = parse_args(__doc__)
    t0 = time.perf_counter()
    data = pair_data(args, name)
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    # the lesson's feature loss; vgg16_bn(True) in the lesson, random weights here (same cost per step)
    vgg_m = vgg16_bn(weights=None).features.eval()
    requires_grad(vgg_m, False)
    blocks = [i - 1 for i, o in enumerate(children(vgg_m)) if isinstance(o, nn.MaxPool2d)]
    if blocks[2:5] != U.SR_LAYER_IDS: raise RuntimeError(f'{name}: vgg16_bn feature layers {blocks[2:5]}, expected {U.SR_LAYER_IDS}')
    feat_loss = FeatureLoss(vgg_m, blocks[2:5], U.SR_LAYER_WGTS)
    # n_classes=3 said outright, as the fastai contestant's n_out (data.c is 3 too: an ImageList's c is its channels)
    learn = speed_levers(unet_learner(data, models.resnet34, pretrained=False, wd=U.SR_WD, loss_func=feat_loss, blur=True,
                                      norm_type=NormType.Weight, n_classes=U.SR_N_OUT, silent=True), args)
    build_s = time.perf_counter() - t0
    fit_and_report(learn, name, args, pct_start=U.SR_PCT_START, setup_s=setup_s, build_s=build_s, import_s=IMPORT_S,
                   n_classes=U.SR_N_OUT, loss_memory_format=U.memory_format(learn.loss_func.m_feat))


if __name__ == '__main__': main()
