"""U-Net step benchmark, contestants 'restorelab-fp32' and 'restorelab-bf16-cl': restorelab's `unet_learner` trained by its own loop.

Run by unet_step.py in a fresh process (project venv); prints one JSON line. `--bf16 --channels-last` give the second contestant
(`learn.to_bf16()` then `learn.to_channels_last()`). The data is the synthetic CamVid-like folder the orchestrator writes, read the
lesson-3 way (SegmentationItemList ... label_from_func ... databunch ... normalize(imagenet_stats)), preloaded into memory as uint8
tensors (`preload=True`: the automatic preload stops at 64x64 images) so each batch is a cheap index into them.
"""
import time
T_START = time.perf_counter()
import argparse

from restorelab.all import *   # noqa: F403 (the lesson's own import line)

import _common as C
import _unet_common as U

IMPORT_S = time.perf_counter() - T_START


class StepTimer(Callback):
    "Wall time of each training step: from the end of one step to the end of the next (batch fetch + every callback included)."
    order = 1000   # last: a step is over when every other callback's after_batch has run
    def __init__(self): self.steps, self.fetches, self.losses = [], [], []
    def before_train(self, learn): self.last = time.perf_counter()
    def before_batch(self, learn):
        if learn.training: self.fetches.append(time.perf_counter() - self.last)
    def after_batch(self, learn):
        if not learn.training: return
        now = time.perf_counter()
        self.steps.append(now - self.last)
        self.last = now
        self.losses.append(learn.loss.detach())   # read after the fit: .item() would add work to the step


def parse_args(doc, options=None):
    """A restorelab contestant's arguments (the shared ones and the two speed levers) and its name; threads and seed set.
    `options(parser)` adds a benchmark's own arguments."""
    p = U.add_args(argparse.ArgumentParser(description=doc))
    p.add_argument('--bf16', action='store_true', help='learn.to_bf16() (bfloat16 autocast)')
    p.add_argument('--channels-last', action='store_true', help='learn.to_channels_last()')
    if options: options(p)
    args = p.parse_args()
    C.set_threads(args.threads)
    set_seed(args.seed)
    return args, 'restorelab-' + ('bf16' if args.bf16 else 'fp32') + ('-cl' if args.channels_last else '')


def check_data(data, args, name):
    "Exactly warmup + steps training batches, preloaded into memory (each batch a cheap index), or a clear error."
    U.check_batches(len(data.train_dl), args, name)
    if not isinstance(data.train_dl.dl, TensorBatchLoader):
        raise RuntimeError(f'{name}: the data is not preloaded into memory (train loader is {type(data.train_dl.dl).__name__})')


def speed_levers(learn, args):
    "The second contestant's levers: bfloat16 autocast, then channels-last weights."
    if args.bf16: learn.to_bf16()
    if args.channels_last: learn.to_channels_last()
    return learn


def step_gflop(learn) -> float:
    "FLOPs of one training step (forward, loss, backward) on one training batch, counted by torch's FlopCounterMode."
    from torch.utils.flop_counter import FlopCounterMode
    xb, yb = next(iter(learn.data.train_dl))
    learn.model.train()
    with FlopCounterMode(display=False) as counter:
        learn._compute_loss(learn._forward(xb), yb).backward()
    learn.opt.zero_grad()
    return counter.get_total_flops() / 1e9


def fit_and_report(learn, name, args, *, pct_start, setup_s, build_s, import_s, **extra):
    "Train one epoch of the one-cycle schedule both libraries use, timing each step, and print the result line."
    timer = StepTimer()
    learn.fit_one_cycle(1, max_lr=U.MAX_LR, moms=U.MOMS, div_factor=U.DIV, pct_start=pct_start, final_div=U.FINAL_DIV,
                        callbacks=[timer])
    extra['step_gflop'] = round(step_gflop(learn), 2)   # after the timed steps: counting them would slow them
    U.report(name, step_times=timer.steps, fetch_times=timer.fetches, args=args, setup_s=setup_s, build_s=build_s,
             import_s=import_s, model=learn.model, losses=timer.losses, img_size=learn.model.img_size,
             amp_dtype=str(learn.amp_dtype), loss_func=type(learn.loss_func).__name__,
             optimizer=f'{type(learn.opt.opt).__name__} betas {learn.opt.param_groups[0]["betas"][1]} (beta2) via OptimWrapper, '
                       f'true_wd {learn.wd}', **extra)


def main():
    args, name = parse_args(__doc__)
    t0 = time.perf_counter()
    path = Path(args.path)
    codes = np.loadtxt(path/'codes.txt', dtype=str)
    get_y_fn = lambda x: path/f'{x.parent.name}annot'/f'{x.stem}.png'
    data = (SegmentationItemList.from_folder(path, preload=True)
            .split_by_folder(train='train', valid='val')
            .label_from_func(get_y_fn, classes=codes, preload=True)
            .databunch(bs=args.bs, device='cpu')
            .normalize(imagenet_stats))
    setup_s = time.perf_counter() - t0
    check_data(data, args, name)

    t0 = time.perf_counter()
    learn = speed_levers(unet_learner(data, models.resnet34, pretrained=False, silent=True), args)   # loss: CrossEntropyFlat(axis=1) from the masks
    build_s = time.perf_counter() - t0
    fit_and_report(learn, name, args, pct_start=U.PCT_START, setup_s=setup_s, build_s=build_s, import_s=IMPORT_S)


if __name__ == '__main__': main()
