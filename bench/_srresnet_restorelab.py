"""SrResnet step benchmark, contestants 'restorelab-fp32' and 'restorelab-bf16-cl': lesson 14's ×4 training step in restorelab.

Run by srresnet_step.py in a fresh process (project venv); prints one JSON line. `--bf16 --channels-last` give the second
contestant (`learn.to_bf16()` then `learn.to_channels_last()`). The data is the folder the orchestrator writes (`hr/{train,val}`
photos, `lr/{train,val}` their Downscale(4) copies), read the lesson-14 way:

    ImageImageList.from_folder(path_lr, preload=True).split_by_folder(train='train', valid='val')
        .label_from_func(lambda x: path_hr/x.parent.name/x.name)
        .transform(([rand_crop(), dihedral()], [crop_pad()]), size=48, resize_method=ResizeMethod.NO, tfm_y=True, scale=4)
        .databunch(bs=16).normalize(imagenet_stats, do_y=True)

Targets at another scale than their inputs have no batched form, so every batch goes through the per-item path (a torch
DataLoader over the LabelList, num_workers=0: each item cropped, flipped and collated): that work is part of each step, and
`fetch_ms` measures it. `preload=True` (inputs and targets) keeps the decoded photos in memory, as the bare loop does.
Model, loss and schedule as in the lesson: `Learner(data, SrResnet(64, 4),
opt_func=optim.Adam, loss_func=F.mse_loss)`, `learn.fit_one_cycle(1, 2e-3, div_factor=40, pct_start=0.1)`.
"""
import time
T_START = time.perf_counter()

from restorelab.all import *   # noqa: F403 (the lesson's own import line)

import _unet_common as U
from _unet_restorelab import StepTimer, parse_args, speed_levers   # shared with the U-Net benchmark

IMPORT_S = time.perf_counter() - T_START


def options(p):
    p.add_argument('--size', type=int, default=48, help='LR patch side in pixels (the HR patch is 4× it)')


def sr_data(args, name):
    "The lesson-14 DataBunch of the orchestrator's `lr/` inputs and `hr/` ×4 targets: random crops + dihedral, both normalised."
    path = Path(args.path)
    path_lr, path_hr = path/'lr', path/'hr'
    data = (ImageImageList.from_folder(path_lr, preload=True)   # decoded once, as the bare loop's tensors
            .split_by_folder(train='train', valid='val')
            .label_from_func(lambda x: path_hr/x.parent.name/x.name)
            .transform(([rand_crop(), dihedral()], [crop_pad()]), size=args.size, resize_method=ResizeMethod.NO, tfm_y=True,
                       scale=U.SRR_SCALE)
            .databunch(bs=args.bs, device='cpu')
            .normalize(imagenet_stats, do_y=True))
    U.check_batches(len(data.train_dl), args, name)
    xb, yb = data.one_batch(denorm=False)   # the shapes the lesson's chain gives (48-px inputs, 192-px targets): checked once
    want = [(args.bs, 3, args.size, args.size), (args.bs, 3, U.SRR_SCALE * args.size, U.SRR_SCALE * args.size)]
    if [tuple(xb.shape), tuple(yb.shape)] != want:
        raise RuntimeError(f'{name}: batches of {tuple(xb.shape)} -> {tuple(yb.shape)}, expected {want[0]} -> {want[1]}')
    return data


def main():
    args, name = parse_args(__doc__, options)
    t0 = time.perf_counter()
    data = sr_data(args, name)
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    learn = speed_levers(Learner(data, SrResnet(U.SRR_NF, U.SRR_SCALE), opt_func=optim.Adam, loss_func=F.mse_loss, silent=True),
                         args)
    if learn.wd != U.SRR_WD or not learn.true_wd or not learn.bn_wd:   # the bare loop's AdamW copies these: keep them in step
        raise RuntimeError(f'{name}: the Learner defaults changed (wd {learn.wd}, true_wd {learn.true_wd}, bn_wd {learn.bn_wd}); '
                           'update SRR_WD in _unet_common.py and bench/_srresnet_bare.py')
    build_s = time.perf_counter() - t0

    timer = StepTimer()
    learn.fit_one_cycle(1, U.SRR_MAX_LR, div_factor=U.SRR_DIV, pct_start=U.SRR_PCT_START, callbacks=[timer])
    U.report(name, step_times=timer.steps, fetch_times=timer.fetches, args=args, setup_s=setup_s, build_s=build_s,
             import_s=IMPORT_S, model=learn.model, losses=timer.losses, n_classes=3, img_size=(args.size, args.size),
             hr_size=[U.SRR_SCALE * args.size] * 2, amp_dtype=str(learn.amp_dtype), loss_func=F.mse_loss.__name__,
             optimizer=f'{type(learn.opt.opt).__name__} (beta2 {learn.opt.param_groups[0]["betas"][1]}) via OptimWrapper, '
                       f'true wd {learn.wd}',
             loader=f'{type(data.train_dl.dl).__name__} (num_workers {getattr(data.train_dl.dl, "num_workers", 0)})')


if __name__ == '__main__': main()
