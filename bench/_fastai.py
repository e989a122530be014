"""MNIST epoch benchmark, contestant 'fastai': fastai 2.8.12's DataBlock + Learner (run with bench/.venv-fastai/bin/python).

Run by mnist_epoch.py in a fresh process; prints one JSON line.
Augmentation: item_tfms [CropPad(34, pad_mode='zeros'), RandomCrop(28)] = zero-pad 3 each side, then a random 28x28 crop on the
training set (RandomCrop centre-crops on the validation set, which gives the original image back). This is the closest fastai v2
equivalent of v1 `rand_pad(3, 28, mode='zeros')`; both work per item on PIL images, as fastai's own pipeline does.
"""
import time
T_START = time.perf_counter()
import argparse, warnings

warnings.filterwarnings('ignore', category=FutureWarning)   # torch.jit.script deprecation noise from fastai's imports
from fastai.vision.all import *   # noqa: F403 (the fastai way: this is the peer being measured)
import fastai

import _common as C

IMPORT_S = time.perf_counter() - T_START


class EpochTimer(Callback):
    "Wall-clock time of the training and validation phases, and the number of images trained on."
    order = -100   # first in, so its before_* run before the other callbacks' work
    def before_fit(self): self.n_train, self.train_s, self.valid_s = 0, 0., 0.
    def before_train(self): self.t0 = time.perf_counter()
    def after_batch(self):
        if self.training: self.n_train += find_bs(self.yb)
    def after_train(self): self.train_s += time.perf_counter() - self.t0
    def before_validate(self): self.t0 = time.perf_counter()
    def after_validate(self): self.valid_s += time.perf_counter() - self.t0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--path', required=True, help='the mnist_png folder')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    args = p.parse_args()
    C.set_threads(args.threads)
    set_seed(args.seed)
    t0 = time.perf_counter()
    dblock = DataBlock(blocks=(ImageBlock(cls=PILImageBW), CategoryBlock),
                       get_items=get_image_files,
                       splitter=GrandparentSplitter(train_name='training', valid_name='testing'),
                       get_y=parent_label,
                       item_tfms=[CropPad(34, pad_mode=PadMode.Zeros), RandomCrop(28)],
                       batch_tfms=Normalize.from_stats(C.MNIST_MEAN, C.MNIST_STD))
    dls = dblock.dataloaders(Path(args.path), bs=C.BS, num_workers=0)
    setup_s = time.perf_counter() - t0
    model = C.resnetish()
    learn = Learner(dls, model, loss_func=CrossEntropyLossFlat(), metrics=accuracy)
    timer = EpochTimer()
    with learn.no_bar():
        # v1 schedule (pct_start 0.3, final lr max/25e4) so all three contestants follow the same curve; fastai's Adam: betas (0.9,0.99), wd 1e-2 decoupled, moms (0.95,0.85,0.95)
        learn.fit_one_cycle(1, C.MAX_LR, pct_start=C.PCT_START, div=C.DIV, div_final=C.FINAL_DIV, cbs=[timer])
    acc = learn.recorder.values[-1][learn.recorder.metric_names.index('accuracy') - 1]   # metric_names starts with 'epoch'
    C.report('fastai', epoch_s=timer.train_s, n_train=timer.n_train, setup_s=setup_s, valid_s=timer.valid_s, valid_acc=acc,
             model=model, import_s=IMPORT_S, fastai=fastai.__version__)


if __name__ == '__main__': main()
