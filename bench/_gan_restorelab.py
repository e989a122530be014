"""GAN step benchmark, contestants 'restorelab-fp32' and 'restorelab-bf16-cl': lesson 7's GAN training step in restorelab.

Run by gan_step.py in a fresh process (project venv); prints one JSON line. `--bf16 --channels-last` give the second
contestant (`learn.to_bf16()` then `learn.to_channels_last()` on the GANLearner: generator and critic). The data is
superres_step.py's image-to-image folder (`lr/` crappified inputs, `hr/` targets), read the lesson-7 way and preloaded
(`_superres_restorelab.pair_data`). Models and settings as in the lesson (random init: no pretraining offline):
  generator  unet_learner(data, models.resnet34, pretrained=False, wd=1e-3, blur=True, norm_type=NormType.Weight,
                          self_attention=True, y_range=(-3., 3.), loss_func=MSELossFlat())
  critic     Learner(data, gan_critic(), metrics=None, loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), wd=1e-3)
  GAN        GANLearner.from_learners(learn_gen, learn_crit, weights_gen=(1., 50.), show_img=False, switcher=switcher,
                                      opt_func=partial(optim.Adam, betas=(0., 0.99)), wd=1e-3)
             + learn.callback_fns.append(partial(GANDiscriminativeLR, mult_lr=5.)), learn.fit(1, 1e-4)
The switcher is FixedGANSwitcher(n_crit=1, n_gen=1) rather than the lesson's AdaptiveGANSwitcher(critic_thresh=0.65): strict
alternation gives every run the same number of generator and critic steps (the switcher picks which step runs next, not what
a step costs). The critic learner shares the generator's DataBunch: `from_learners` takes only its model and its loss.
"""
import time
T_START = time.perf_counter()

from restorelab.all import *   # noqa: F403 (the lesson's own import line)

import _common as C
import _unet_common as U
from _unet_restorelab import StepTimer, parse_args, speed_levers   # shared with the U-Net benchmark
from _superres_restorelab import pair_data                          # the super-resolution benchmark's data

IMPORT_S = time.perf_counter() - T_START


class GANStepTimer(StepTimer):
    """StepTimer noting, per training step, whether it trained the generator and at what learning rate: both as they stand at
    the step's before_batch (this callback runs last); the switcher changes the phase only in the step's after_batch."""
    def __init__(self):
        super().__init__()
        self.gen_modes, self.lrs = [], []
    def before_batch(self, learn):
        super().before_batch(learn)
        if learn.training:
            self.gen_modes.append(learn.gan_trainer.gen_mode)
            self.lrs.append(learn.opt.lrs[0])   # the current phase's optimizer (GANDiscriminativeLR has run)


def main():
    args, name = parse_args(__doc__)
    t0 = time.perf_counter()
    data = pair_data(args, name)
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    # n_classes=3 said outright, as the fastai contestant's n_out (data.c is 3 too: an ImageList's c is its channels)
    learn_gen = unet_learner(data, models.resnet34, pretrained=False, wd=U.GAN_WD, blur=True, norm_type=NormType.Weight,
                             self_attention=True, y_range=U.GAN_Y_RANGE, loss_func=MSELossFlat(), n_classes=U.SR_N_OUT,
                             silent=True)
    learn_crit = Learner(data, gan_critic(), metrics=None, loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), wd=U.GAN_WD,
                         silent=True)
    learn = GANLearner.from_learners(learn_gen, learn_crit, weights_gen=U.GAN_WEIGHTS_GEN, show_img=False,
                                     switcher=partial(FixedGANSwitcher, n_crit=1, n_gen=1),
                                     opt_func=partial(optim.Adam, betas=U.GAN_BETAS), wd=U.GAN_WD, silent=True)
    learn.callback_fns.append(partial(GANDiscriminativeLR, mult_lr=U.GAN_MULT_LR))
    speed_levers(learn, args)
    build_s = time.perf_counter() - t0

    timer = GANStepTimer()
    learn.fit(1, U.GAN_LR, callbacks=[timer])
    gan, opt = learn.model, learn.opt   # a GANModule; GANOptimizers (one OptimWrapper per model)
    U.report(name, step_times=timer.steps, fetch_times=timer.fetches, args=args, setup_s=setup_s, build_s=build_s,
             import_s=IMPORT_S, model=gan, losses=timer.losses, n_classes=U.SR_N_OUT, img_size=gan.generator.img_size,
             amp_dtype=str(learn.amp_dtype), loss_func=type(learn.loss_func).__name__,
             optimizer=f'two {type(opt.opt_gen.opt).__name__} betas {opt.opt_gen.param_groups[0]["betas"]} via OptimWrapper '
                       f'(generator, critic: only the current one steps), wd {learn.wd} (true_wd {learn.true_wd})',
             gen_params=C.n_params(gan.generator), crit_params=C.n_params(gan.critic),
             crit_memory_format=U.memory_format(gan.critic),
             **U.gan_steps(timer.steps, timer.gen_modes, timer.lrs, timer.losses, args, name))


if __name__ == '__main__': main()
