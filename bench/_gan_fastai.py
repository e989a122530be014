"""GAN step benchmark, contestant 'fastai-fp32': lesson 7's GAN training step in fastai 2.8.12 (bench/.venv-fastai).

Run by gan_step.py in a fresh process; prints one JSON line. The data is superres_step.py's image-to-image folder (`lr/`
crappified inputs, `hr/` targets), decoded once into uint8 arrays and fed through fastai's own pipeline, as in
_superres_fastai.py (DataBlock(ImageBlock, ImageBlock), Normalize with the ImageNet stats on inputs and targets, num_workers=0).
Models and settings as in the lesson, written the fastai v2 way (random init: no pretraining offline):
  generator  unet_learner(dls, resnet34, pretrained=False, n_out=3, wd=1e-3, blur=True, norm_type=NormType.Weight,
                          self_attention=True, y_range=(-3., 3.), loss_func=MSELossFlat())
  critic     Learner(dls, gan_critic(), metrics=None, loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), wd=1e-3)
  GAN        GANLearner.from_learners(learn_gen, learn_crit, weights_gen=(1., 50.), show_img=False, switcher=switcher,
                                      opt_func=partial(Adam, mom=0., sqr_mom=0.99), cbs=GANDiscriminativeLR(mult_lr=5.),
                                      wd=1e-3), learn.fit(1, 1e-4) inside no_bar() and no_logging()
with switcher = FixedGANSwitcher(n_crit=1, n_gen=1), as the restorelab contestants. fastai's Adam with mom=0 is v1's
`partial(optim.Adam, betas=(0., 0.99))`. GANDiscriminativeLR goes in through `cbs=`, as fastai's own lesson-7 notebook does.
"""
import time
T_START = time.perf_counter()
import warnings

warnings.filterwarnings('ignore', category=FutureWarning)   # torch.jit.script deprecation noise from fastai's imports
from fastai.vision.all import *   # noqa: F403 (the fastai way: this is the peer being measured)
from fastai.vision.gan import *   # noqa: F403 (not part of fastai.vision.all)
import fastai

import _common as C
import _unet_common as U
from _unet_fastai import StepTimer, parse_args, make_dls   # shared with the U-Net benchmark
from _superres_fastai import load_arrays                  # the super-resolution benchmark's data

IMPORT_S = time.perf_counter() - T_START


class GANStepTimer(StepTimer):
    """StepTimer noting, per training step, whether it trained the generator and at what learning rate: both as they stand at
    the step's before_batch (this callback runs last); the switcher changes the phase only in the step's after_batch."""
    def before_fit(self):
        super().before_fit()
        self.gen_modes, self.lrs = [], []
    def before_batch(self):
        super().before_batch()
        if self.training:
            self.gen_modes.append(self.learn.gan_trainer.gen_mode)
            self.lrs.append(self.learn.opt.hypers[0]['lr'])


def main():
    args = parse_args(__doc__)
    t0 = time.perf_counter()
    dls = make_dls(*load_arrays(Path(args.path)), ImageBlock, args)
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    learn_gen = unet_learner(dls, resnet34, pretrained=False, n_out=U.SR_N_OUT, wd=U.GAN_WD, blur=True,
                             norm_type=NormType.Weight, self_attention=True, y_range=U.GAN_Y_RANGE, loss_func=MSELossFlat())
    learn_crit = Learner(dls, gan_critic(), metrics=None, loss_func=AdaptiveLoss(nn.BCEWithLogitsLoss()), wd=U.GAN_WD)
    beta1, beta2 = U.GAN_BETAS
    learn = GANLearner.from_learners(learn_gen, learn_crit, weights_gen=U.GAN_WEIGHTS_GEN, show_img=False,
                                     switcher=FixedGANSwitcher(n_crit=1, n_gen=1),
                                     opt_func=partial(Adam, mom=beta1, sqr_mom=beta2),
                                     cbs=GANDiscriminativeLR(mult_lr=U.GAN_MULT_LR), wd=U.GAN_WD)
    build_s = time.perf_counter() - t0

    timer = GANStepTimer()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, U.GAN_LR, cbs=[timer])
    gan, hypers = learn.model, learn.opt.hypers[0]
    U.report('fastai-fp32', step_times=timer.step_times, fetch_times=timer.fetch_times, args=args, setup_s=setup_s,
             build_s=build_s, import_s=IMPORT_S, model=gan, losses=timer.losses, n_classes=U.SR_N_OUT,
             img_size=tuple(dls.one_batch()[0].shape[-2:]), amp_dtype='None', loss_func=type(learn.loss_func).__name__,
             optimizer=f'one fastai {learn.opt_func.func.__name__} mom {hypers["mom"]} sqr_mom {hypers["sqr_mom"]} over generator '
                       f'and critic, wd {hypers["wd"]} (true_wd, wd_bn_bias {learn.wd_bn_bias})',
             gen_params=C.n_params(gan.generator), crit_params=C.n_params(gan.critic),
             crit_memory_format=U.memory_format(gan.critic), fastai=fastai.__version__,
             **U.gan_steps(timer.step_times, timer.gen_modes, timer.lrs, timer.losses, args, 'fastai-fp32'))


if __name__ == '__main__': main()
