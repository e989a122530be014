"""SrResnet step benchmark, contestant 'bare-fp32': the same ×4 training step in a hand-written PyTorch loop (the floor).

Run by srresnet_step.py in a fresh process (project venv); prints one JSON line. The model is restorelab's `SrResnet(64, 4)`
(imported: the model is not what is measured), everything else plain torch:

- data: the orchestrator's `lr/train` and `hr/train` photos decoded once (Pillow) into two uint8 tensors in memory (not timed);
- per step: a shuffled batch of indices, per image a random `size`-px crop offset in LR and the matching ×4 crop in HR, a
  random dihedral symmetry per image (the same for input and target), then both to float and normalised with the ImageNet
  stats in one pass each; forward, `F.mse_loss`, backward, `torch.optim.AdamW` (decoupled weight decay 1e-2 on every
  parameter, as restorelab's Learner), `OneCycleLR` (max lr 2e-3, div 40, pct_start 0.1, final div 4e5 overall, cosine, beta1
  0.95 -> 0.85 -> 0.95: fastai v1's one cycle) and `zero_grad(set_to_none=True)`.

Batch making, profiled (16 images, 96-px LR and 384-px HR photos, 1 thread): a loop over the 16 images slicing each crop,
flipping/transposing the slice and stacking (~3-4 ms with the normalisation) against a vectorised `unfold` + advanced-indexing
gather of the crops with the flips applied per bit on the batch (~15 ms): the loop is kept. Either is under 1% of a step.
"""
import time
T_START = time.perf_counter()
import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

from restorelab.models.srresnet import SrResnet

import _common as C
import _unet_common as U

IMPORT_S = time.perf_counter() - T_START
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_folder(folder):
    "Every PNG in `folder` (sorted) decoded into one uint8 (N, 3, H, W) tensor."
    files = sorted(Path(folder).glob('*.png'))
    if not files: raise FileNotFoundError(f'no PNG files in {folder}')
    return torch.from_numpy(np.stack([np.asarray(PILImage.open(f).convert('RGB')) for f in files])).permute(0, 3, 1, 2).contiguous()


def dihedral(t, k):
    "One of the 8 symmetries of the square on a CHW view (bit 1: left-right, bit 2: up-down, bit 4: transpose), as restorelab's."
    if k & 1: t = t.flip(-1)
    if k & 2: t = t.flip(-2)
    return t.transpose(-1, -2) if k & 4 else t


def make_batch(lr, hr, idx, size, scale, mean, inv_std):
    "Random crops (per image) of LR and the matching ×scale HR crops, a random dihedral per image, as normalised float batches."
    n = len(idx)
    rows = torch.randint(0, lr.shape[-2] - size + 1, (n,)).tolist()
    cols = torch.randint(0, lr.shape[-1] - size + 1, (n,)).tolist()
    ks = torch.randint(0, 8, (n,)).tolist()
    s, hs = scale, scale * size
    xb = torch.stack([dihedral(lr[i, :, r:r + size, c:c + size], k) for i, r, c, k in zip(idx.tolist(), rows, cols, ks)])
    yb = torch.stack([dihedral(hr[i, :, s * r:s * r + hs, s * c:s * c + hs], k) for i, r, c, k in zip(idx.tolist(), rows, cols, ks)])
    # (x/255 - mean)/std in one pass per batch: (x - 255·mean) · 1/(255·std)
    return xb.float().sub_(mean).mul_(inv_std), yb.float().sub_(mean).mul_(inv_std)


def main():
    p = U.add_args(argparse.ArgumentParser(description=__doc__))
    p.add_argument('--size', type=int, default=48, help='LR patch side in pixels (the HR patch is 4× it)')
    args = p.parse_args()
    C.set_threads(args.threads)
    torch.manual_seed(args.seed)
    name, scale = 'bare-fp32', U.SRR_SCALE

    t0 = time.perf_counter()
    path = Path(args.path)
    lr, hr = load_folder(path/'lr'/'train'), load_folder(path/'hr'/'train')
    if len(lr) != len(hr) or hr.shape[-2:] != (scale * lr.shape[-2], scale * lr.shape[-1]) or min(lr.shape[-2:]) < args.size:
        raise ValueError(f'{name}: LR {tuple(lr.shape)} and HR {tuple(hr.shape)} are not ×{scale} pairs with room for '
                         f'{args.size}-px crops')
    n_batches = len(lr) // args.bs                                     # drop_last, as restorelab's train loader
    U.check_batches(n_batches, args, name)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    inv_std = 1 / (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = SrResnet(U.SRR_NF, scale)
    # AdamW = Adam + p·(1 - lr·wd) before the step: restorelab's OptimWrapper with true_wd on every parameter (bn_wd=True)
    opt = torch.optim.AdamW(model.parameters(), lr=U.SRR_MAX_LR / U.SRR_DIV, betas=(U.MOMS[0], 0.999), weight_decay=U.SRR_WD)
    # torch's OneCycleLR divides by zero when pct_start·total_steps is exactly 1 (its first phase then ends at step 0):
    # nudge pct_start, which moves no step's learning rate by more than rounding
    pct_start = U.SRR_PCT_START + (1e-9 if abs(U.SRR_PCT_START * n_batches - 1) < 1e-9 else 0.)
    # final lr = initial/final_div_factor = max_lr/(div·1e4): fastai v1's default final div (div × 1e4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=U.SRR_MAX_LR, total_steps=n_batches, pct_start=pct_start,
                                                anneal_strategy='cos', cycle_momentum=True, base_momentum=U.MOMS[1],
                                                max_momentum=U.MOMS[0], div_factor=U.SRR_DIV, final_div_factor=1e4)
    build_s = time.perf_counter() - t0

    steps, fetches, losses = [], [], []
    model.train()
    perm = torch.randperm(len(lr))
    last = time.perf_counter()
    for b in range(n_batches):
        xb, yb = make_batch(lr, hr, perm[b * args.bs:(b + 1) * args.bs], args.size, scale, mean, inv_std)
        fetches.append(time.perf_counter() - last)
        loss = F.mse_loss(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        now = time.perf_counter()
        steps.append(now - last)
        last = now
        losses.append(loss.detach())
    U.report(name, step_times=steps, fetch_times=fetches, args=args, setup_s=setup_s, build_s=build_s, import_s=IMPORT_S,
             model=model, losses=losses, n_classes=3, img_size=(args.size, args.size), hr_size=[scale * args.size] * 2,
             amp_dtype='None', loss_func=F.mse_loss.__name__,
             optimizer=f'AdamW (beta2 {opt.param_groups[0]["betas"][1]}), wd {U.SRR_WD} + OneCycleLR',
             loader='uint8 tensors in memory, crops sliced per image')


if __name__ == '__main__': main()
