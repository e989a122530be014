"""Shared pieces of the U-Net step benchmarks: the settings both libraries use, step timing statistics, the result line.

Imported by `_unet_restorelab.py` / `_superres_restorelab.py` / `_gan_restorelab.py` / `_srresnet_restorelab.py` /
`_srresnet_bare.py` (project venv) and `_unet_fastai.py` / `_superres_fastai.py` / `_gan_fastai.py` (bench/.venv-fastai),
so it needs only torch and the standard library (and `_common.py`, which needs no more).
"""
import json, math, os, platform, statistics

import torch

import _common as C

N_CLASSES = 12                             # CamVid-like: 12 codes, as in lesson 3
MAX_LR, PCT_START, DIV, FINAL_DIV = 1e-3, 0.3, 25., 25e4   # one cycle with fastai v1's defaults (final lr = max/(div*1e4))
MOMS = (0.95, 0.85)                                         # beta1 0.95 -> 0.85 -> 0.95; both libraries: Adam beta2 0.99, wd 1e-2 decoupled

# lesson 7's super-resolution (superres_step.py): `unet_learner(data, arch, wd=1e-3, loss_func=feat_loss, blur=True,
# norm_type=NormType.Weight)`, `fit_one_cycle(.., 1e-3, pct_start=0.9)`, feat_loss = FeatureLoss(vgg_m, blocks[2:5], [5, 15, 2])
SR_N_OUT, SR_WD, SR_PCT_START = 3, 1e-3, 0.9                 # RGB out; same max lr, div, final div and moms as above
SR_LAYER_IDS, SR_LAYER_WGTS = [22, 32, 42], [5, 15, 2]       # vgg16_bn's ReLUs before the last three max-pools, their weights

# lesson 7's GAN (gan_step.py): generator `unet_learner(data_gen, arch, wd=1e-3, blur=True, norm_type=NormType.Weight,
# self_attention=True, y_range=(-3., 3.), loss_func=MSELossFlat())`, critic `gan_critic()` with
# `AdaptiveLoss(nn.BCEWithLogitsLoss())` and wd 1e-3, `GANLearner.from_learners(.., weights_gen=(1., 50.), opt_func=Adam with
# betas (0, 0.99), wd=1e-3)` + `GANDiscriminativeLR(mult_lr=5.)`, `fit(.., 1e-4)`: a constant learning rate, no one cycle
GAN_WD, GAN_Y_RANGE, GAN_WEIGHTS_GEN, GAN_BETAS, GAN_MULT_LR, GAN_LR = 1e-3, (-3., 3.), (1., 50.), (0., 0.99), 5., 1e-4

# lesson 14's super-resolution (srresnet_step.py): `Learner(data, SrResnet(64, 4), opt_func=optim.Adam, loss_func=F.mse_loss)`,
# `fit_one_cycle(1, 2e-3, div_factor=40, pct_start=0.1)` (v0.7's `use_clr_beta=(40, 10)`); the rest as fastai v1 / restorelab:
# final div = div × 1e4, beta1 0.95 -> 0.85 -> 0.95 (MOMS), Adam's beta2 0.999 (torch's default), decoupled weight decay 1e-2 on
# every parameter (the Learner's default wd, true_wd, bn_wd)
SRR_NF, SRR_SCALE, SRR_MAX_LR, SRR_DIV, SRR_PCT_START, SRR_WD = 64, 4, 2e-3, 40., 0.1, 1e-2


def add_args(p):
    "The arguments every contestant takes."
    p.add_argument('--path', required=True, help='the synthetic data folder the orchestrator wrote')
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--warmup', type=int, default=3, help='training steps run before the timed ones')
    p.add_argument('--steps', type=int, default=20, help='timed training steps')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    return p


def check_batches(n_batches, args, who):
    "The training set must hold exactly warmup + steps batches (the orchestrator writes it so): say so clearly when it doesn't."
    want = args.warmup + args.steps
    if n_batches != want:
        raise ValueError(f'{who}: the train loader of {args.path} has {n_batches} batches of {args.bs}, but --warmup {args.warmup} + '
                         f'--steps {args.steps} = {want} are needed (write the data with n_train = {want} * bs)')


def gan_steps(step_times, gen_modes, lrs, losses, args, name):
    """A GAN run's steps split by phase (`gen_modes`: True where a step trained the generator, False the critic; `lrs`: the
    learning rate it ran at; warm-up included, like `step_times` and `losses`): the median of the timed steps of each phase,
    how many there were, the last loss of each phase and every step's phase as a letter (G, C), as fields of the result line.
    Checked: the lesson's learning rates (GAN_LR for the generator, GAN_MULT_LR times it for the critic) and, with strict
    alternation (FixedGANSwitcher(n_crit=1, n_gen=1)) and an even --steps, as many timed steps of each phase."""
    if not len(gen_modes) == len(lrs) == len(step_times):
        raise RuntimeError(f'{name}: {len(gen_modes)} phases and {len(lrs)} learning rates noted for {len(step_times)} steps')
    for g, lr in zip(gen_modes, lrs):
        want = GAN_LR * (1 if g else GAN_MULT_LR)
        if not math.isclose(lr, want, rel_tol=1e-6):
            raise RuntimeError(f'{name}: a {"generator" if g else "critic"} step ran at lr {lr:g}, expected {want:g}')
    timed = list(zip(step_times, gen_modes))[args.warmup:]
    gen, crit = [t for t, g in timed if g], [t for t, g in timed if not g]
    if not gen or not crit or (args.steps % 2 == 0 and len(gen) != len(crit)):
        raise RuntimeError(f'{name}: {len(gen)} generator and {len(crit)} critic steps timed; strict alternation gives '
                           f'{args.steps // 2} of each')
    last = lambda want: float(next(l for l, g in zip(reversed(losses), reversed(gen_modes)) if g == want))
    return dict(gen_step_s=round(statistics.median(gen), 4), crit_step_s=round(statistics.median(crit), 4),
                n_gen=len(gen), n_crit=len(crit), final_gen_loss=round(last(True), 4), final_crit_loss=round(last(False), 4),
                phases=''.join('G' if g else 'C' for g in gen_modes))


def memory_format(model):
    "'channels_last' when the model's first 4-d weight is stored channels-last, else 'contiguous'."
    w = next(p for p in model.parameters() if p.ndim == 4)
    return 'channels_last' if w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous() else 'contiguous'


def report(name, *, step_times, fetch_times, args, setup_s, build_s, import_s, model, losses, n_classes=N_CLASSES, **extra):
    "Print the one JSON result line the orchestrator reads: median step time over the timed steps (after --warmup)."
    warm, timed = step_times[:args.warmup], step_times[args.warmup:]
    if len(timed) != args.steps: raise RuntimeError(f'{name}: timed {len(timed)} training steps, expected {args.steps}')
    step_s = statistics.median(timed)
    res = dict(name=name, step_s=round(step_s, 4), img_s=round(args.bs / step_s, 2),
               step_min_s=round(min(timed), 4), step_max_s=round(max(timed), 4),
               fetch_ms=round(1000 * statistics.median(fetch_times[args.warmup:]), 2),
               warmup_s=[round(t, 3) for t in warm], steps_s=[round(t, 4) for t in timed],
               bs=args.bs, size=list(extra.pop('img_size')), n_classes=n_classes, setup_s=round(setup_s, 3), build_s=round(build_s, 3),
               import_s=round(import_s, 3), peak_rss_mb=round(C.peak_rss_mb(), 1), params=C.n_params(model),
               final_loss=round(float(losses[-1]), 4), losses=[round(float(l), 4) for l in losses],
               memory_format=memory_format(model), threads=torch.get_num_threads(),
               omp_wait_policy=os.environ.get('OMP_WAIT_POLICY', 'unset'),   # restorelab sets PASSIVE when imported
               cpu_capability=torch.backends.cpu.get_cpu_capability(),
               torch=torch.__version__, python=platform.python_version(), **extra)
    print(json.dumps(res), flush=True)
    return res
