"""MNIST speed floor: restorelab's lesson pipeline against the fastest straightforward hand-written loop over the same
preloaded uint8 tensors, epochs side by side in ONE process, and where the extra time per batch goes.

    .venv/bin/python bench/mnist_floor.py [--pairs 4] [--tiny]

Why one process and pairs: this host's speed drifts by ±20% within a minute, so separate processes compare different
machines. Each pair runs one epoch of each contestant back to back (the order alternates from pair to pair), from the
same initial weights and the same seed; the table reports every epoch and the median of the pair ratios.

The bare loop is what a careful PyTorch user would write for this job, profiled until nothing obvious was left: the
split's uint8 tensor indexed by a shuffled permutation; zero-pad 3 and one random 28x28 crop offset per image, as one
gather on uint8 (an `unfold` view, then advanced indexing); float conversion and normalisation in one multiply-add;
`F.cross_entropy`; `torch.optim.AdamW` (the fastest of its implementations on this CPU, chosen by timing them:
`--impl`) with `OneCycleLR` set to fastai's one-cycle (cosine both ways, beta1 0.95 -> 0.85 -> 0.95, beta2 0.99,
decoupled weight decay 1e-2, final lr max/25e4). The model is restorelab's own `conv_layer`/`res_block` ResNet-ish
for both (built from the same seed).

restorelab runs the lesson's code: `ImageList.from_folder(path, convert_mode='L')` ... `transform(rand_pad(3, 28,
mode='zeros'))` ... `databunch(bs=128).normalize()`, `Learner(...).fit_one_cycle(1, 0.05)`, its training phase timed
by a callback. Both profiles time the same sections of every batch (fetch = making the batch, forward, loss,
backward, step, the rest = callbacks, recorder, progress); the sections are timed with `perf_counter` at the loop's
events, which costs the same in both. A benchmark: it asserts no time. Writes bench/results/mnist_floor.md.
"""
import statistics, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import fmt, log, machine_info, machine_section, option_parser, parse_options, started, table, use_shared_archives, write_report

from restorelab.all import (untar_data, URLs, ImageList, rand_pad, conv_layer, res_block, Learner, accuracy, Callback,
                            Flatten, set_seed)

BS, MAX_LR, PCT_START, DIV, FINAL_DIV, MOMS, BETA2, WD = 128, 0.05, 0.3, 25., 25e4, (0.95, 0.85), 0.99, 1e-2
SECTIONS = ('fetch', 'forward', 'loss', 'backward', 'step', 'rest')


def lesson_data(tiny: bool):
    path = untar_data(URLs.MNIST_TINY if tiny else URLs.MNIST, show_progress=False)
    return (ImageList.from_folder(path, convert_mode='L').split_by_folder(train='training', valid='testing')
            .label_from_folder().transform(([*rand_pad(padding=3, size=28, mode='zeros')], []))
            .databunch(bs=BS).normalize())


def lesson_model(seed: int):
    torch.manual_seed(seed)
    conv2 = lambda ni, nf: conv_layer(ni, nf, stride=2)
    conv_and_res = lambda ni, nf: nn.Sequential(conv2(ni, nf), res_block(nf))
    return nn.Sequential(conv_and_res(1, 8), conv_and_res(8, 16), conv_and_res(16, 32), conv_and_res(32, 16),
                         conv2(16, 10), Flatten())


class Sections:
    "Wall-clock seconds per section of each batch, summed over an epoch."
    def __init__(self): self.total, self.n, self.t = dict.fromkeys(SECTIONS, 0.), 0, None
    def start(self): self.t = time.perf_counter()
    def mark(self, name):
        now = time.perf_counter(); self.total[name] += now - self.t; self.t = now
    def per_batch_ms(self): return {k: 1e3 * v / max(self.n, 1) for k, v in self.total.items()}


# ---------------------------------------------------------------- the bare loop
def pad_crop(xb, pad: int = 3):
    "uint8 (b,1,h,w) zero-padded by `pad`, one random h x w crop per image: one gather through an `unfold` view."
    b, _, h, w = xb.shape
    xp = F.pad(xb, (pad, pad, pad, pad))
    oy, ox = torch.randint(0, 2 * pad + 1, (b,)), torch.randint(0, 2 * pad + 1, (b,))
    return xp.unfold(2, h, 1).unfold(3, w, 1)[torch.arange(b), :, oy, ox]


def make_opt(model, n_batches, impl):
    kw = {'foreach': dict(foreach=True), 'fused': dict(fused=True), 'loop': dict(foreach=False)}[impl]
    opt = torch.optim.AdamW(model.parameters(), lr=MAX_LR / DIV, betas=(MOMS[0], BETA2), weight_decay=WD, **kw)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=n_batches, pct_start=PCT_START,
                                                anneal_strategy='cos', cycle_momentum=True, base_momentum=MOMS[1],
                                                max_momentum=MOMS[0], div_factor=DIV, final_div_factor=FINAL_DIV / DIV)
    return opt, sched


def bare_epoch(model, xs, ys, mean, std, impl, prof: Sections):
    n_batches = len(xs) // BS
    opt, sched = make_opt(model, n_batches, impl)
    scale, shift = 1 / (255 * std), -mean / std
    model.train()
    perm = torch.randperm(len(xs))
    t0 = time.perf_counter(); prof.start()
    for i in range(n_batches):
        idx = perm[i * BS:(i + 1) * BS]
        xb, yb = pad_crop(xs[idx]).float().mul_(scale).add_(shift), ys[idx]
        prof.mark('fetch')
        out = model(xb); prof.mark('forward')
        loss = F.cross_entropy(out, yb); prof.mark('loss')
        loss.backward(); prof.mark('backward')
        opt.step(); sched.step(); opt.zero_grad(set_to_none=True); prof.mark('step')
        prof.n += 1
    return time.perf_counter() - t0


# ---------------------------------------------------------------- restorelab, with the same sections
class Timed(Callback):
    "The same sections, at the loop's events (order: first at each event, so it measures the loop and not itself)."
    order = -100
    def __init__(self, prof): self.prof, self.train_s = prof, 0.
    def before_train(self, learn): self.t0 = time.perf_counter(); self.prof.start()
    def before_batch(self, learn):
        if learn.training: self.prof.mark('fetch')
    def after_pred(self, learn):
        if learn.training: self.prof.mark('forward')
    def after_loss(self, learn):
        if learn.training: self.prof.mark('loss')
    def after_backward(self, learn): self.prof.mark('backward')
    def after_step(self, learn): self.prof.mark('step')
    def after_batch(self, learn):
        if learn.training: self.prof.n += 1
    def after_train(self, learn):
        self.prof.mark('rest'); self.train_s = time.perf_counter() - self.t0


class AfterBatchEnd(Callback):
    "Closes the 'rest' section once every other callback ran (at after_batch, and at before_batch: the scheduler ...)."
    order = 1000
    def __init__(self, prof): self.prof = prof
    def before_batch(self, learn):
        if learn.training: self.prof.mark('rest')
    def after_batch(self, learn):
        if learn.training: self.prof.mark('rest')


def restorelab_epoch(data, model, prof: Sections):
    learn = Learner(data, model, loss_func=nn.CrossEntropyLoss(), metrics=accuracy)
    timer = Timed(prof)
    learn.fit_one_cycle(1, max_lr=MAX_LR, callbacks=[timer, AfterBatchEnd(prof)])
    return timer.train_s, learn.recorder.metrics[-1][0]


def choose_impl(model, xs, ys, mean, std):
    "The fastest AdamW implementation here, on 60 batches each (part of making the bare loop as fast as it goes)."
    secs = {}
    for impl in ('foreach', 'fused', 'loop'):
        try:
            m = lesson_model(0); sub = min(len(xs), 60 * BS)
            secs[impl] = bare_epoch(m, xs[:sub], ys[:sub], mean, std, impl, Sections())
        except (RuntimeError, TypeError) as e: log(f'AdamW {impl}: {e}')
    log('AdamW implementations, seconds for 60 batches: ' + ', '.join(f'{k} {v:.2f}' for k, v in secs.items()))
    return min(secs, key=secs.get), secs


def main():
    p = option_parser(__doc__, rounds=4, rounds_help='pairs of epochs')
    p.add_argument('--tiny', action='store_true', help='the shipped MNIST sample (a smoke run)')
    p.add_argument('--threads', type=int, default=0)
    args = parse_options(p, 'mnist_floor.md')
    if args.threads: torch.set_num_threads(args.threads)
    start = started(); use_shared_archives()
    set_seed(0)
    data = lesson_data(args.tiny)
    xs, ys = data.train_dl.dl.xs, data.train_dl.dl.ys   # the lesson's own preloaded uint8 tensors, (n, 1, 28, 28)
    mean, std = (float(s) for s in data.stats)
    impl, impl_secs = choose_impl(lesson_model(0), xs, ys, mean, std)
    rows, ratios, profs = [], [], {'bare': Sections(), 'restorelab': Sections()}
    for pair in range(args.rounds):
        order = ('bare', 'restorelab') if pair % 2 == 0 else ('restorelab', 'bare')
        secs = {}
        for name in order:
            model = lesson_model(pair)
            torch.manual_seed(100 + pair)
            if name == 'bare': secs[name] = bare_epoch(model, xs, ys, mean, std, impl, profs['bare'])
            else: secs[name], acc = restorelab_epoch(data, model, profs['restorelab'])
            log(f'pair {pair}: {name} {secs[name]:.2f} s')
        ratios.append(secs['restorelab'] / secs['bare'])
        rows.append([pair, ' then '.join(order), fmt(secs['bare']), fmt(secs['restorelab']), fmt(ratios[-1], 3) + '×'])
    med = statistics.median(ratios)
    prof_rows, pb, pr = [], profs['bare'].per_batch_ms(), profs['restorelab'].per_batch_ms()
    for k in SECTIONS: prof_rows.append([k, fmt(pb[k], 2), fmt(pr[k], 2), fmt(pr[k] - pb[k], 2)])
    prof_rows.append(['**total**', fmt(sum(pb.values()), 2), fmt(sum(pr.values()), 2), fmt(sum(pr.values()) - sum(pb.values()), 2)])
    info = machine_info([], start)
    n_train = len(xs) // BS * BS
    write_report(args.out, 'MNIST speed floor: restorelab against the fastest straightforward loop, in one process', [
        [f"Generated by `bench/mnist_floor.py` on {info['started']} UTC: {args.rounds} pairs of one training epoch each "
         f"({n_train:,} images, {len(xs) // BS} batches of {BS}), in one process, the order alternating by pair."],
        table(['pair', 'order', 'bare s', 'restorelab s', 'restorelab ÷ bare'], 'rlrrr', rows),
        [f'**Median of the pair ratios: {med:.3f}×** (goal: ≤ 1.05×). Bare loop AdamW implementation: `{impl}` '
         '(seconds for 60 batches: ' + ', '.join(f'{k} {v:.2f}' for k, v in impl_secs.items()) + ').'],
        ['## Where the time per batch goes (ms, mean over every epoch above)'],
        table(['section', 'bare', 'restorelab', 'extra'], 'lrrr', prof_rows),
        ['fetch: making the batch (index, pad and crop, float, normalise); step: optimizer and schedule (restorelab: its',
         'weight decay, Adam, the one-cycle callback\'s settings); rest: after the step until the next batch is asked for',
         '(zero_grad, the recorder, the progress bar, the other callbacks).'],
        *machine_section(info, [f"- CPU: {info['cpu']}, {info['cores']} cores; torch {torch.__version__}, "
                                f"{torch.get_num_threads()} threads"])])


if __name__ == '__main__': main()
