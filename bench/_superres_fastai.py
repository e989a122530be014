"""Super-resolution step benchmark, contestant 'fastai-fp32': lesson 7's training step in fastai 2.8.12 (bench/.venv-fastai).

Run by superres_step.py in a fresh process; prints one JSON line. The data is the image-to-image folder the orchestrator writes
(`lr/{train,val}` crappified inputs, `hr/{train,val}` targets), decoded once into uint8 arrays (in memory, like restorelab's
preload) and fed through fastai's own pipeline: DataBlock(ImageBlock, ImageBlock) whose get_x/get_y index the arrays, so each
batch runs fastai's per-item transforms (array -> PILImage -> ToTensor, collate) and its batch transforms (IntToFloatTensor,
Normalize with the ImageNet stats, which fastai applies to the target images too, as restorelab's `do_y=True`), but reads no
file. num_workers=0, progress bar and logging off. fastai v2 has no FeatureLoss: the lesson's class is written out below on
fastai's `hook_outputs`.
"""
import time
T_START = time.perf_counter()
import warnings

warnings.filterwarnings('ignore', category=FutureWarning)   # torch.jit.script deprecation noise from fastai's imports
from fastai.vision.all import *   # noqa: F403 (the fastai way: this is the peer being measured)
from PIL import Image as PILImg
from torchvision.models import vgg16_bn

import _unet_common as U
from _unet_fastai import parse_args, make_dls, fit_and_report   # shared with the U-Net benchmark

IMPORT_S = time.perf_counter() - T_START

base_loss = F.l1_loss


def gram_matrix(x):
    "Lesson 7's Gram matrix."
    n, c, h, w = x.size()
    x = x.view(n, c, -1)
    return (x @ x.transpose(1, 2)) / (c * h * w)


class FeatureLoss(nn.Module):
    "Lesson 7's perceptual loss as written for fastai v1, on fastai v2's `hook_outputs`: L1 on pixels, features and Gram matrices."
    def __init__(self, m_feat, layer_ids, layer_wgts):
        super().__init__()
        self.m_feat = m_feat
        self.loss_features = [self.m_feat[i] for i in layer_ids]
        self.hooks = hook_outputs(self.loss_features, detach=False)
        self.wgts = layer_wgts
        self.metric_names = ['pixel', ] + [f'feat_{i}' for i in range(len(layer_ids))
                                           ] + [f'gram_{i}' for i in range(len(layer_ids))]

    def make_features(self, x, clone=False):
        self.m_feat(x)
        return [(o.clone() if clone else o) for o in self.hooks.stored]

    def forward(self, input, target):
        out_feat = self.make_features(target, clone=True)
        in_feat = self.make_features(input)
        self.feat_losses = [base_loss(input, target)]
        self.feat_losses += [base_loss(f_in, f_out) * w
                             for f_in, f_out, w in zip(in_feat, out_feat, self.wgts)]
        self.feat_losses += [base_loss(gram_matrix(f_in), gram_matrix(f_out)) * w ** 2 * 5e3
                             for f_in, f_out, w in zip(in_feat, out_feat, self.wgts)]
        self.metrics = dict(zip(self.metric_names, self.feat_losses))
        return sum(self.feat_losses)

    def __del__(self): self.hooks.remove()


def load_arrays(path):
    "Inputs (lr) and targets (hr) of train/ then val/ as HWC uint8 RGB arrays, decoded once; and the indices of the validation items."
    xs, ys, valid_idx = [], [], []
    for folder in ('train', 'val'):
        for f in sorted((path/'lr'/folder).glob('*.png')):
            if folder == 'val': valid_idx.append(len(xs))
            xs.append(np.array(PILImg.open(f).convert('RGB')))
            ys.append(np.array(PILImg.open(path/'hr'/folder/f.name).convert('RGB')))
    return xs, ys, valid_idx


def main():
    args = parse_args(__doc__)
    t0 = time.perf_counter()
    dls = make_dls(*load_arrays(Path(args.path)), ImageBlock, args)
    setup_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    vgg_m = vgg16_bn(weights=None).features.eval()   # vgg16_bn(True) in the lesson; random weights here (same cost per step)
    vgg_m.requires_grad_(False)   # the lesson's requires_grad(vgg_m, False): fastai v2's requires_grad(m) only reads the flag
    blocks = [i - 1 for i, o in enumerate(vgg_m.children()) if isinstance(o, nn.MaxPool2d)]   # fastai v2 has no `children`
    if blocks[2:5] != U.SR_LAYER_IDS: raise RuntimeError(f'fastai-fp32: vgg16_bn feature layers {blocks[2:5]}, expected {U.SR_LAYER_IDS}')
    feat_loss = FeatureLoss(vgg_m, blocks[2:5], U.SR_LAYER_WGTS)
    learn = unet_learner(dls, resnet34, pretrained=False, n_out=U.SR_N_OUT, loss_func=feat_loss, wd=U.SR_WD,
                         blur=True, norm_type=NormType.Weight)
    build_s = time.perf_counter() - t0
    fit_and_report(learn, dls, args, pct_start=U.SR_PCT_START, setup_s=setup_s, build_s=build_s, import_s=IMPORT_S,
                   n_classes=U.SR_N_OUT, loss_memory_format=U.memory_format(learn.loss_func.m_feat))


if __name__ == '__main__': main()
