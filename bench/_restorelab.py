"""MNIST epoch benchmark, contestant 'restorelab': the lesson's data block pipeline and Learner, written as the lesson writes it.

Run by mnist_epoch.py in a fresh process (project venv); prints one JSON line. `--path` is accepted for symmetry with the other
contestants but unused: the lesson gets its data from `untar_data(URLs.MNIST)`, and so does this script.
"""
import time
T_START = time.perf_counter()
import argparse

from restorelab.all import *   # noqa: F403 (the lesson's own import line is what is measured)
import torch

import _common as C

IMPORT_S = time.perf_counter() - T_START


class EpochTimer(Callback):
    "Wall-clock time of the training and validation phases."
    def __init__(self): self.train_s, self.valid_s = 0., 0.
    def before_train(self, learn): self.t0 = time.perf_counter()
    def after_train(self, learn): self.train_s += time.perf_counter() - self.t0
    def before_validate(self, learn): self.t0 = time.perf_counter()
    def after_validate(self, learn): self.valid_s += time.perf_counter() - self.t0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--path', help='unused (the lesson calls untar_data)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    p.add_argument('--setup-only', action='store_true', help='build the DataBunch, print its setup time and stop (run with an empty cache to time decoding)')
    args = p.parse_args()
    C.set_threads(args.threads)
    set_seed(args.seed)
    t0 = time.perf_counter()
    path = untar_data(URLs.MNIST)
    il = ImageList.from_folder(path, convert_mode='L')
    sd = il.split_by_folder(train='training', valid='testing')
    ll = sd.label_from_folder()
    tfms = ([*rand_pad(padding=3, size=28, mode='zeros')], [])
    ll = ll.transform(tfms)
    data = ll.databunch(bs=C.BS).normalize()
    setup_s = time.perf_counter() - t0
    if args.setup_only:
        import json
        print(json.dumps(dict(name='restorelab-setup', setup_s=round(setup_s, 3), n_images=len(data.train_ds) + len(data.valid_ds),
                              threads=torch.get_num_threads(), peak_rss_mb=round(C.peak_rss_mb(), 1))), flush=True)
        return

    def conv2(ni, nf): return conv_layer(ni, nf, stride=2)
    def conv_and_res(ni, nf): return nn.Sequential(conv2(ni, nf), res_block(nf))
    model = nn.Sequential(conv_and_res(1, 8), conv_and_res(8, 16), conv_and_res(16, 32), conv_and_res(32, 16), conv2(16, 10), Flatten())
    learn = Learner(data, model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    timer = EpochTimer()
    learn.fit_one_cycle(1, max_lr=C.MAX_LR, callbacks=[timer])
    # train loader drops the last partial batch (v1 databunch), so count what it yields
    n_train = min(len(data.train_dl) * C.BS, len(data.train_ds))
    acc = learn.validate()[1]   # v1: [valid_loss, *metrics]; an extra pass, outside the timed phases
    C.report('restorelab', epoch_s=timer.train_s, n_train=n_train, setup_s=setup_s, valid_s=timer.valid_s, valid_acc=acc,
             model=model, import_s=IMPORT_S, data_path=str(path))


if __name__ == '__main__': main()
