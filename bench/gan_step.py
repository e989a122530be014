"""Lesson 7 GAN training-step benchmark: the resnet34 U-Net generator and `gan_critic`, 128x128 RGB, batch size 8;
restorelab (fp32, bf16+channels_last) vs fastai, generator steps and critic steps timed apart.

Contestants (each run in a fresh process, printing one JSON line):
  restorelab-fp32     bench/_gan_restorelab.py                     GANLearner.from_learners(unet_learner(data, models.resnet34,
                                                                    pretrained=False, blur=True, norm_type=NormType.Weight,
                                                                    self_attention=True, y_range=(-3., 3.), loss_func=MSELossFlat()),
                                                                    Learner(data, gan_critic(), loss_func=AdaptiveLoss(...)), ...)
  restorelab-bf16-cl  bench/_gan_restorelab.py --bf16 --channels-last  the same after learn.to_bf16() and learn.to_channels_last()
  fastai-fp32         bench/_gan_fastai.py                         fastai 2.8.12's GANLearner.from_learners on the same models

All train one epoch of exactly --warmup + --steps batches of superres_step.py's synthetic image-to-image set (crappified inputs,
targets of the same size; written once into a temporary folder, held in memory by both libraries) with the lesson's settings
(weights_gen=(1., 50.), Adam betas (0, 0.99), wd 1e-3, GANDiscriminativeLR(mult_lr=5.), fit(1, 1e-4)) and
FixedGANSwitcher(n_crit=1, n_gen=1): critic and generator steps strictly alternate, critic first, so an even --steps times as
many of each. The median generator step and the median critic step after the warm-up are reported. The orchestration
(options, rounds, summary, machine info) is unet_step.py's.

Run from the repository root with the project venv:
    .venv/bin/python bench/gan_step.py [--rounds 1] [--steps 12] [--only restorelab-fp32,fastai-fp32]
Writes bench/results/gan_step.md (medians per kind of step, speed relative to fastai, goals, every run, machine info). A benchmark:
it never asserts a time.
"""
import sys
from pathlib import Path

from _harness import FASTAI_PY, fmt, log, summary_rows, table, times, write_report
from superres_step import LR_SCALE, N_COLOURS, write_data
from unet_step import goal_cell, machine_and_runs, parse_args, run_benchmark, speed_lines

# name: (python, script, extra args, what it is)
CONTESTANTS = {
    'restorelab-fp32': (Path(sys.executable), '_gan_restorelab.py', [], 'restorelab, float32'),
    'restorelab-bf16-cl': (Path(sys.executable), '_gan_restorelab.py', ['--bf16', '--channels-last'],
                           'restorelab, `learn.to_bf16()` + `learn.to_channels_last()`'),
    'fastai-fp32': (FASTAI_PY, '_gan_fastai.py', [], 'fastai 2.8.12, float32'),
}
GOALS = {'restorelab-fp32': 1.0, 'restorelab-bf16-cl': 1.8}   # the issue: speed relative to fastai-fp32, for each kind of step
KINDS = (('gen', 'generator'), ('crit', 'critic'))            # the two kinds of step: key prefix, name


def check(p, args):
    "This benchmark's own option checks (after unet_step.py's)."
    if args.steps % 2: p.error(f'--steps must be even, so that generator and critic steps alternate evenly (got {args.steps})')
    # gan_critic halves the image 4 times, then its last 4×4 convolution (no padding) needs at least 4×4 left
    if args.size < 64: p.error(f'--size must be at least 64 for gan_critic (got {args.size})')


def describe(r):
    "The line logged for a successful run."
    return (f"  generator step {r['gen_step_s']:.3f} s, critic step {r['crit_step_s']:.3f} s (medians of {r['n_gen']} and "
            f"{r['n_crit']}), fetch {r['fetch_ms']:.1f} ms, params {r['params']:,}, peak RSS {r['peak_rss_mb']:.0f} MiB")


def gan_table(names, summary):
    "Per contestant: per kind of step, the median time, img/s, speed vs fastai-fp32 and its goal; then the rest."
    def cells(name, s):
        per_kind = [c for k, _ in KINDS for c in (fmt(s[f'{k}_step_s'], 3), fmt(s[f'{k}_img_s'], 2),
                                                   times(s[f'{k}_speed_vs_fastai']),
                                                   goal_cell(GOALS.get(name), s[f'{k}_speed_vs_fastai']))]
        return [name, *per_kind, fmt(s['peak_rss_mb'], 0), fmt(s['fetch_ms'], 1), f"{s['gen_params']:,} + {s['crit_params']:,}",
                fmt(s['setup_s']), fmt(s['build_s']), fmt(s['import_s'])]
    header = ['contestant', *[h for _, kind in KINDS for h in (f'{kind} step s', f'{kind} img/s', 'vs fastai-fp32', 'goal')],
              'peak RSS MiB', 'fetch ms', 'params (generator + critic)', 'setup s', 'build s', 'import s']
    return table(header, 'l' + 'r' * (len(header) - 1), summary_rows(names, summary, cells))


def runs_table(results):
    "Every run's medians per kind of step, failed runs included."
    header = ['round', 'contestant', 'generator step s (median)', 'critic step s (median)', 'steps G + C', 'fetch ms',
              'warm-up steps s', 'final G loss', 'final C loss', 'peak RSS MiB', 'wall s', 'load before']
    def cells(r):
        if 'error' in r: return [r['round'], r['name'], f"failed: {r['error']}", *[None] * 7, fmt(r['wall_s'], 1), fmt(r.get('load_before'))]
        warm = ', '.join(f'{p}{x:.2f}' for p, x in zip(r['phases'], r['warmup_s']))
        return [r['round'], r['name'], fmt(r['gen_step_s'], 3), fmt(r['crit_step_s'], 3), f"{r['n_gen']} + {r['n_crit']}",
                fmt(r['fetch_ms'], 1), warm, fmt(r['final_gen_loss'], 3), fmt(r['final_crit_loss'], 3), fmt(r['peak_rss_mb'], 0),
                fmt(r['wall_s'], 1), fmt(r.get('load_before'))]
    return table(header, 'rlrrrrlrrrrr', map(cells, results))


def report(args, names, run):
    "Write bench/results/gan_step.md (or --out) and print it."
    summary, info, n_train = run['summary'], run['info'], run['n_train']
    for s in summary.values():
        if 'error' not in s: s.update({f'{k}_img_s': args.bs / s[f'{k}_step_s'] for k, _ in KINDS})
    intro = [f"Generated by `bench/gan_step.py` on {info['started']} UTC. Lesson 7's GAN: a U-Net generator on a resnet34 body (random init,",
             f'blur, weight norm, self-attention, y_range (-3, 3)) against `gan_critic()`, {args.size}×{args.size} RGB, batch size {args.bs}, CPU.',
             f'Each run is a fresh process that trains one epoch of exactly {args.warmup} + {args.steps} batches, critic and generator',
             f'steps alternating (critic first); its generator and critic step times are the medians of the {args.steps // 2} steps of each',
             f'kind after the {args.warmup} warm-up steps. Each number below is the median over {args.rounds} round(s). A step = from the end of',
             'one training batch to the end of the next: fetching the batch, forward, loss, backward, optimizer step, zero_grad and every',
             'callback of the library\'s own loop (the switch to the other phase, in the switcher\'s after_batch, counts in the step',
             'it ends). img/s = batch size ÷ the median step time.',
             '',
             '- **generator step**: the generator on the crappified batch, the (frozen) critic on its output, loss 1 × BCE(critic',
             '  calls the output real) + 50 × MSE(output, target), backward through the critic into the generator, the generator\'s Adam.',
             '- **critic step**: the (frozen) generator on the crappified batch without gradients, the critic on the real (target)',
             '  batch and on those fakes, loss (BCE(real, 1) + BCE(fake, 0)) / 2, backward through the critic, the critic\'s Adam at',
             '  5 × the learning rate. fastai runs the critic twice (real batch, then fake batch); restorelab, whose `gan_critic` has',
             '  no batch norm, runs it once over the 16 real and fake images (`critic_one_pass`, the same loss and gradients).',
             '- **fetch ms**: the median time from the end of a step to the next step\'s before_batch in the timer (the loader and',
             '  the before_batch of the callbacks that run before it). For restorelab\'s one-pass critic this includes making the',
             '  fakes (`GANTrainer.before_batch`, before the timer\'s own), which fastai does inside its loss: compare the step',
             '  times, not this column, across libraries.']
    speed = ['Speed vs fastai-fp32 = fastai-fp32 step time ÷ the contestant\'s, for each kind of step (> 1: faster than fastai). The',
             'issue\'s goals apply to both kinds; the bf16 one only means something on a CPU with native bf16 (AVX512-BF16 or AMX,',
             'listed under Machine): elsewhere bfloat16 is emulated and slower than float32. Peak RSS: the process\'s peak resident',
             'memory (`ru_maxrss`), both models, their optimizers, the data and the activations together.',
             *speed_lines(names, summary, GOALS, model='GAN ', omp=True,
                          steps=[(f'{k}_step_s', f', {kind} steps') for k, kind in KINDS]),
             '- critic weights: ' + ', '.join(f"{n} {s['crit_memory_format']}" for n in names
                                              if 'crit_memory_format' in (s := summary.get(n, {}))),
             f'- OMP_WAIT_POLICY={args.omp_wait_policy} in every contestant (`--omp-wait-policy`; PASSIVE is what restorelab sets when',
             '  imported; fastai alone leaves OpenMP threads spinning while they wait).']
    losses = ['Final training losses, generator and critic (median over the runs; a sanity check that every contestant trains,',
              'not a comparison: the batches come in a different order in each library and the models start from different',
              'random weights): ' + ', '.join(f"{n} G {fmt(s['final_gen_loss'], 3)} / C {fmt(s['final_crit_loss'], 3)}"
                                             for n in names if 'final_gen_loss' in (s := summary.get(n, {})))]
    what = [f'- Data (all): superres_step.py\'s: {n_train} train + {args.bs} valid {args.size}×{args.size} PNG targets from',
            f'  `restorelab.test_utils.synth_segmentation` (flat rectangles of {N_COLOURS} colours plus noise) in `hr/`, each crappified',
            f'  the lesson\'s way into `lr/` (short side to {round(args.size * LR_SCALE)} px, its JPEG quality drawn as text, JPEG, seeded',
            f'  per image) and resized back to {args.size}×{args.size}. Decoded once into memory by both libraries; inputs and targets',
            '  normalised with the ImageNet stats. No augmentation. The one validation batch after the epoch is not timed.',
            '- Training (all, lesson 7\'s GAN): `GANLearner.from_learners(learn_gen, learn_crit, weights_gen=(1., 50.), show_img=False,',
            '  switcher=..., opt_func=<Adam, betas (0, 0.99)>, wd=1e-3)` with `GANDiscriminativeLR(mult_lr=5.)`, `fit(1, 1e-4)`: a',
            '  constant learning rate, no one cycle; switch_eval (the idle model in eval mode), generator loss weights (1, 50). The',
            '  generator learner: `unet_learner(.., resnet34, pretrained=False, wd=1e-3, blur=True, norm_type=NormType.Weight,',
            '  self_attention=True, y_range=(-3., 3.), loss_func=MSELossFlat())`; the critic learner: `Learner(data, gan_critic(),',
            '  metrics=None, loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), wd=1e-3)` on the generator\'s data (`from_learners` takes',
            '  only its model and its loss). Random initial weights: the lesson starts from a pretrained generator and critic, which',
            '  changes the losses, not what a step costs.',
            '- Switcher (all): `FixedGANSwitcher(n_crit=1, n_gen=1)`, not the lesson\'s `AdaptiveGANSwitcher(critic_thresh=0.65)`. The',
            '  switcher only decides which kind of step runs next; strict alternation gives every run the same number of each kind,',
            '  whatever the losses do. Each run checks the alternation and the learning rates (1e-4 generator, 5e-4 critic).',
            '- **restorelab-fp32**: the lesson\'s code on restorelab: data as in superres_step.py (`ImageImageList ... preload=True`),',
            '  `partial(FixedGANSwitcher, n_crit=1, n_gen=1)`, `opt_func=partial(optim.Adam, betas=(0., 0.99))` (torch\'s Adam, eps',
            '  1e-8), `learn.callback_fns.append(partial(GANDiscriminativeLR, mult_lr=5.))`. Two `OptimWrapper`s, one per model: only',
            '  the current phase\'s optimizer steps (as fastai v1). True weight decay on every parameter (`bn_wd=True`).',
            '- **restorelab-bf16-cl**: the same, then `learn.to_bf16()` (the GAN\'s forward under `torch.autocast(\'cpu\', torch.bfloat16)`,',
            '  and inside the GAN loss the other model\'s pass too; losses in float32; float32 weights and optimizers) and',
            '  `learn.to_channels_last()` (generator, critic and the input batches channels_last).',
            '- **fastai-fp32**: fastai 2.8.12, data as in superres_step.py (`DataBlock(ImageBlock, ImageBlock)` over arrays in memory),',
            '  `FixedGANSwitcher(n_crit=1, n_gen=1)`, `opt_func=partial(Adam, mom=0., sqr_mom=0.99)` (fastai\'s Adam, eps 1e-5),',
            '  `cbs=GANDiscriminativeLR(mult_lr=5.)`, inside `no_bar()` and `no_logging()`. One fastai `Optimizer` over both models:',
            '  its `zero_grad` zeroes gradients rather than dropping them, so from the second step on every step also runs Adam and',
            '  weight decay over the idle model\'s parameters (zero gradients): a cost restorelab\'s steps do not have. No weight',
            '  decay on BatchNorm/bias (`wd_bn_bias=False`).']
    layout = ['Both generators are fastai\'s DynamicUnet layout (with a self-attention layer in the decoder and a sigmoid range on',
              'the output) and both critics fastai\'s `gan_critic` layout (spectral-norm convolutions, a dense res block, self-attention),',
              'which is why their parameter counts can be compared one to one.']
    phase_note = ', each after its phase (G generator, C critic)'
    write_report(args.out, 'Lesson 7 GAN training steps: restorelab (fp32, bf16 + channels_last) vs fastai',
                 [intro, gan_table(names, summary), speed, losses, ['## What each contestant does'], what, layout,
                  *machine_and_runs(info, run['results'], runs=runs_table, phase_note=phase_note)])


def warn_if_emulated_bf16(names, contestants=CONTESTANTS):
    """Say up front when the bf16 contestant will run emulated: on an AVX2-only CPU its steps are tens of times slower than fp32.
    The note names the `--only` that leaves it out of `contestants`."""
    from restorelab.core import cpu_has_native_bf16
    if 'restorelab-bf16-cl' in names and cpu_has_native_bf16() is False:
        rest = ','.join(n for n in contestants if n != 'restorelab-bf16-cl')
        log('note: this CPU has no native bfloat16 (no avx512_bf16 / amx_bf16): restorelab-bf16-cl runs emulated, tens of times '
            f'slower than fp32 (it may reach --timeout); --only {rest} leaves it out')


def main():
    args, names = parse_args(__doc__, CONTESTANTS, 'gan_step.md', rounds=1, steps=12, warmup=2, check=check)
    warn_if_emulated_bf16(names)
    report(args, names, run_benchmark(args, names, CONTESTANTS, write_data, 'gan_step_', describe=describe,
                                      medians=('gen_step_s', 'crit_step_s', 'final_gen_loss', 'final_crit_loss'),
                                      firsts=('gen_params', 'crit_params', 'crit_memory_format'),
                                      speedups={f'{k}_speed_vs_fastai': f'{k}_step_s' for k, _ in KINDS}))


if __name__ == '__main__': main()
