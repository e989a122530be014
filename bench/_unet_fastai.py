"""U-Net step benchmark, contestant 'fastai-fp32': fastai 2.8.12's `unet_learner` trained by its own loop (bench/.venv-fastai).

Run by unet_step.py in a fresh process; prints one JSON line. The data is the synthetic CamVid-like folder the orchestrator
writes, decoded once into uint8 arrays (in memory, like restorelab's preload) and fed through fastai's own pipeline:
DataBlock(ImageBlock, MaskBlock(codes)) whose get_x/get_y index the arrays, so each batch runs fastai's per-item transforms
(array -> PILImage/PILMask -> ToTensor, collate) and its batch transforms (IntToFloatTensor, Normalize with the ImageNet stats,
as restorelab's `.normalize(imagenet_stats)`), but reads no file. num_workers=0, progress bar and logging off.
"""
import time
T_START = time.perf_counter()
import argparse, warnings

warnings.filterwarnings('ignore', category=FutureWarning)   # torch.jit.script deprecation noise from fastai's imports
from fastai.vision.all import *   # noqa: F403 (the fastai way: this is the peer being measured)
import fastai
from PIL import Image as PILImg

import _common as C
import _unet_common as U

IMPORT_S = time.perf_counter() - T_START


class StepTimer(Callback):
    "Wall time of each training step: from the end of one step to the end of the next (batch fetch + every callback included)."
    order = 1000   # last: a step is over when every other callback's after_batch has run
    def before_fit(self): self.step_times, self.fetch_times, self.losses = [], [], []
    def before_train(self): self.t_last = time.perf_counter()
    def before_batch(self):
        if self.training: self.fetch_times.append(time.perf_counter() - self.t_last)
    def after_batch(self):
        if not self.training: return
        now = time.perf_counter()
        self.step_times.append(now - self.t_last)
        self.t_last = now
        self.losses.append(self.learn.loss.detach())   # read after the fit: .item() would add work to the step


def load_arrays(path):
    "Images (HWC uint8 RGB) and masks (HW uint8) of train/ then val/, decoded once; and the indices of the validation items."
    xs, ys, valid_idx = [], [], []
    for folder in ('train', 'val'):
        for f in sorted((path/folder).glob('*.png')):
            if folder == 'val': valid_idx.append(len(xs))
            xs.append(np.array(PILImg.open(f).convert('RGB')))
            ys.append(np.array(PILImg.open(path/f'{folder}annot'/f'{f.stem}.png')))
    return xs, ys, valid_idx


def parse_args(doc):
    "The fastai contestant's arguments; threads and seed set."
    args = U.add_args(argparse.ArgumentParser(description=doc)).parse_args()
    C.set_threads(args.threads)
    set_seed(args.seed)
    return args


def make_dls(xs, ys, valid_idx, y_block, args):
    "DataLoaders over the decoded arrays (inputs normalised with the ImageNet stats, and image targets too), checked."
    dblock = DataBlock(blocks=(ImageBlock, y_block),
                       get_x=lambda i: xs[i], get_y=lambda i: ys[i],
                       splitter=IndexSplitter(valid_idx),
                       batch_tfms=Normalize.from_stats(*imagenet_stats, cuda=False))
    dls = dblock.dataloaders(list(range(len(xs))), bs=args.bs, num_workers=0, device=torch.device('cpu'))
    U.check_batches(len(dls.train), args, 'fastai-fp32')
    return dls


def fit_and_report(learn, dls, args, *, pct_start, setup_s, build_s, import_s, **extra):
    "Train one epoch of the v1 one-cycle schedule restorelab uses, timing each step, and print the result line."
    timer = StepTimer()
    with learn.no_bar(), learn.no_logging():
        # fastai's Adam: betas (0.9, 0.99), eps 1e-5, wd decoupled (not on BN/bias)
        learn.fit_one_cycle(1, U.MAX_LR, pct_start=pct_start, div=U.DIV, div_final=U.FINAL_DIV, moms=(*U.MOMS, U.MOMS[0]),
                            cbs=[timer])
    U.report('fastai-fp32', step_times=timer.step_times, fetch_times=timer.fetch_times, args=args, setup_s=setup_s,
             build_s=build_s, import_s=import_s, model=learn.model, losses=timer.losses,
             img_size=tuple(dls.one_batch()[0].shape[-2:]), amp_dtype='None', loss_func=type(learn.loss_func).__name__,
             optimizer=f'fastai {learn.opt_func.__name__} sqr_mom {learn.opt.hypers[0]["sqr_mom"]}, wd {learn.opt.hypers[0]["wd"]} '
                       f'(true_wd, wd_bn_bias {learn.wd_bn_bias})',
             fastai=fastai.__version__, **extra)


def main():
    args = parse_args(__doc__)
    t0 = time.perf_counter()
    path = Path(args.path)
    codes = np.loadtxt(path/'codes.txt', dtype=str)
    dls = make_dls(*load_arrays(path), MaskBlock(codes), args)
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    # CrossEntropyLossFlat(axis=1) is fastai's loss for masks, as restorelab's CrossEntropyFlat(axis=1): passed to be explicit
    learn = unet_learner(dls, resnet34, pretrained=False, n_out=len(codes), loss_func=CrossEntropyLossFlat(axis=1))
    build_s = time.perf_counter() - t0
    fit_and_report(learn, dls, args, pct_start=U.PCT_START, setup_s=setup_s, build_s=build_s, import_s=IMPORT_S)


if __name__ == '__main__': main()
