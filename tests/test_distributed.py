"""Data-parallel training through the Learner, started by real `torchrun --standalone --nproc_per_node 2` (gloo, CPU):
the ranks end identical, the run equals one process with the same global batch and order, the validation metric is
the whole validation set's, and only rank 0 writes files or prints."""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import two_class_images

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path
    import numpy as np
    import torch
    from torch import nn
    from restorelab.all import *
    torch.set_num_threads(1)
    path, kind, bs = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rank = int(os.environ.get('RANK', 0))
    # CPU and gloo by default (one GPU cannot host two NCCL ranks); bench/gpu_check.sh sets RESTORELAB_DDP_CUDA=1 on 2+ GPUs
    cuda = os.environ.get('RESTORELAB_DDP_CUDA') == '1'
    device, backend = ('cuda', 'nccl') if cuda else ('cpu', 'gloo')
    out = path/f'{kind}-{num_distrib()}'/f'rank{rank}'
    torch.manual_seed(0)
    if kind == 'classifier':
        data = (ImageList.from_folder(path/'imgs', preload=True).split_by_folder().label_from_folder()
                .databunch(bs=bs, path=out, device=device))
        model = nn.Sequential(conv_layer(3, 8, stride=2, norm_type=None), conv_layer(8, 16, stride=2, norm_type=None),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
        learn = Learner(data, model, metrics=accuracy)
        with learn.distrib_ctx(backend=backend):
            learn.fit_one_cycle(2, 1e-2, checkpoint='ddp')
            assert isinstance(learn.model, nn.Sequential)   # unwrapped after the fit
        learn.save('final')
    elif kind == 'unet':   # the segmentation lesson's model, BatchNorm included
        from restorelab.test_utils import synth_segmentation
        seg = path/'seg'
        codes = list(np.loadtxt(seg/'codes.txt', dtype=str))
        data = (SegmentationItemList.from_folder(seg, include=['train', 'val']).split_by_folder(train='train', valid='val')
                .label_from_func(lambda x: seg/f'{x.parent.name}annot'/f'{x.stem}.png', classes=codes)
                .databunch(bs=bs, path=out, device=device))
        learn = unet_learner(data, models.resnet18, pretrained=False, metrics=dice)
        with learn.distrib_ctx(backend=backend): learn.fit_one_cycle(1, 1e-3)
    else:
        data = (ImageImageList.from_folder(path/'imgs').split_by_folder().label_from_func(lambda x: x)
                .databunch(bs=bs, path=out, device=device))
        gen = nn.Sequential(conv_layer(3, 8), conv_layer(8, 3, norm_type=None, use_activ=False))
        crit = nn.Sequential(conv_layer(3, 8, stride=2, norm_type=None), conv_layer(8, 1, stride=2, use_activ=False),
                             nn.Flatten())
        learn = GANLearner(data, gen, crit, *gan_loss_from_func(nn.L1Loss(), AdaptiveLoss(nn.BCEWithLogitsLoss())),
                           switcher=partial(AdaptiveGANSwitcher, critic_thresh=0.9), show_img=False)
        with learn.distrib_ctx(backend=backend): learn.fit(2, 1e-3)
    res = path/'results'; res.mkdir(exist_ok=True)
    name = f'{kind}-{num_distrib()}-{rank}'
    torch.save(unwrap_model(learn.model).state_dict(), res/f'{name}.pth')
    (res/f'{name}.json').write_text(json.dumps(dict(values=learn.recorder.values,
                                                    gen_batches=getattr(getattr(learn, 'gan_trainer', None), 'gen_batches', None))))
''')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp('ddp')
    two_class_images(path/'imgs', 40, 14, levels=(80, 170), noise=50)   # 14: two validation shares of 7
    from restorelab.test_utils import synth_segmentation
    synth_segmentation(path/'seg', n_train=8, n_valid=4, size=(32, 32), n_classes=3)
    (path/'train.py').write_text(SCRIPT)
    return path


def _torchrun() -> list:
    exe = Path(sys.executable).parent/'torchrun'
    return [str(exe)] if exe.exists() else [sys.executable, '-m', 'torch.distributed.run']


def _run(folder, kind, bs, nproc):
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'): env.pop(k, None)
    cmd = ([*_torchrun(), '--standalone', '--nproc_per_node', str(nproc)] if nproc > 1 else [sys.executable])
    p = subprocess.run([*cmd, str(folder/'train.py'), str(folder), kind, str(bs)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def _load(folder, name):
    res = folder/'results'
    return torch.load(res/f'{name}.pth', weights_only=True), json.loads((res/f'{name}.json').read_text())


def test_ddp_classifier_equals_one_process(folder):
    log = _run(folder, 'classifier', 8, 2)       # 2 processes x 8 items per step ...
    _run(folder, 'classifier', 16, 1)            # ... against 1 process x 16, the same seed and so the same order
    (w0, h0), (w1, h1), (ws, hs) = (_load(folder, n) for n in ('classifier-2-0', 'classifier-2-1', 'classifier-0-0'))
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k                                  # the ranks hold identical weights
        torch.testing.assert_close(w0[k], ws[k], rtol=1e-4, atol=1e-5)       # = one process with the global batch
    assert w0 and any(not torch.equal(ws[k], torch.zeros_like(ws[k])) for k in ws)
    # the epoch table: validation loss and accuracy over the whole validation set, as one process reports them
    for row, ref in zip(h0['values'], hs['values']):
        np.testing.assert_allclose(row[2], ref[2], rtol=1e-4)
        assert row[3] == pytest.approx(ref[3], abs=1e-6)   # float32 per-batch means, summed
    assert h1['values'] == h0['values'] or all(r1[2:4] == r0[2:4] for r1, r0 in zip(h1['values'], h0['values']))
    # only rank 0 wrote files (the checkpoint, save) and printed the table
    ddp = folder/'classifier-2'
    assert (ddp/'rank0'/'models'/'final.pth').exists() and (ddp/'rank0'/'models'/'ddp.pth').exists()
    assert not (ddp/'rank1').exists() or not any(p.is_file() for p in (ddp/'rank1').rglob('*'))
    assert log.count('valid_loss') == 1, log
    # the file rank 0 wrote loads in a single process
    state = torch.load(ddp/'rank0'/'models'/'final.pth', weights_only=True)
    assert set(state['model']) == set(w0)


def test_ddp_unet_ranks_agree(folder):
    "The U-Net of the segmentation lesson: BatchNorm's statistics too are rank 0's on every rank at the end."
    _run(folder, 'unet', 2, 2)
    (w0, h0), (w1, h1) = _load(folder, 'unet-2-0'), _load(folder, 'unet-2-1')
    assert any('running_mean' in k for k in w0)
    for k in w0: assert torch.equal(w0[k], w1[k]), k
    assert h0['values'][-1][2:4] == h1['values'][-1][2:4]   # the same global validation loss and dice on both


def test_ddp_gan_ranks_agree(folder):
    _run(folder, 'gan', 4, 2)
    (w0, h0), (w1, h1) = _load(folder, 'gan-2-0'), _load(folder, 'gan-2-1')
    for k in w0: assert torch.equal(w0[k], w1[k]), k
    assert h0['gen_batches'] == h1['gen_batches'] and h0['gen_batches'] > 0   # the same phases on both ranks
