"""Kill-and-resume: a training process killed with SIGKILL in the middle of an epoch, rerun with the same call, ends
with weights `torch.equal` to an uninterrupted run's (augmentation, dropout, one-cycle schedule, both loader paths,
and a GANLearner with an adaptive switcher)."""
import json, os, signal, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

from conftest import two_class_images

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, os, signal, sys
    from pathlib import Path
    import torch
    from torch import nn
    from restorelab.all import *
    torch.set_num_threads(1)
    path, kind, loader, kill, every = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == 'kill', int(sys.argv[5]) or None
    out = path/f'out-{kind}-{loader}-{every}'

    class Kill(Callback):
        "SIGKILL in the middle of epoch 1 (nothing after it runs: no after_fit, no cleanup)."
        def after_batch(self, learn):
            if learn.training and learn.epoch == 1 and learn.iter == 3: os.kill(os.getpid(), signal.SIGKILL)

    torch.manual_seed(0)
    il = ImageList.from_folder(path/'imgs', preload=(loader == 'tensor'))
    tfms = ([*rand_pad(2, 16), flip_lr()], [])
    if kind == 'classifier':
        data = (il.split_by_folder().label_from_folder().transform(tfms, size=16).databunch(bs=8, path=out))
        model = nn.Sequential(conv_layer(3, 8, stride=2), nn.Dropout(0.3), conv_layer(8, 16, stride=2),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(16, 2))
        learn = Learner(data, model, metrics=accuracy)
        learn.fit_one_cycle(3, 1e-2, checkpoint='run1', checkpoint_every=every, callbacks=[Kill()] if kill else None)
    else:   # a GAN restoring noisy images: generator and critic take turns, decided by the critic's loss
        data = (ImageImageList.from_folder(path/'imgs').split_by_folder().label_from_func(lambda x: x)
                .transform(tfms, size=16, tfm_y=True)
                .databunch(bs=8, path=out))
        gen = nn.Sequential(conv_layer(3, 8), nn.Dropout(0.2), conv_layer(8, 3, norm_type=None, use_activ=False))
        crit = nn.Sequential(conv_layer(3, 8, stride=2), nn.Dropout(0.2), conv_layer(8, 1, stride=2, use_activ=False),
                             nn.Flatten())
        learn = GANLearner(data, gen, crit, *gan_loss_from_func(nn.L1Loss(), AdaptiveLoss(nn.BCEWithLogitsLoss())),
                           switcher=partial(AdaptiveGANSwitcher, critic_thresh=0.9), show_img=False)
        learn.fit(3, 1e-3, checkpoint='run1', checkpoint_every=every, callbacks=[Kill()] if kill else None)
    torch.save(unwrap_model(learn.model).state_dict(), out/'final.pth')
    (out/'history.json').write_text(json.dumps(dict(values=learn.recorder.values, losses=learn.recorder.losses)))
''')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp('resume')
    two_class_images(path/'imgs', 40, 16)
    (path/'train.py').write_text(SCRIPT)
    return path


def _run(folder, kind, loader, kill, every, expect_rc=0):
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1'}
    p = subprocess.run([sys.executable, str(folder/'train.py'), str(folder), kind, loader, 'kill' if kill else 'go',
                        str(every or 0)], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == expect_rc, p.stdout + p.stderr
    return p.stdout


def _result(folder, kind, loader, every):
    out = folder/f'out-{kind}-{loader}-{every}'
    return (torch.load(out/'final.pth', weights_only=True), json.loads((out/'history.json').read_text()))


@pytest.mark.parametrize('kind,loader,every', [('classifier', 'tensor', None), ('classifier', 'tensor', 2),
                                               ('classifier', 'items', 2), ('gan', 'items', 2), ('gan', 'items', None)])
def test_kill_and_resume_is_bit_identical(folder, kind, loader, every):
    # the uninterrupted run, in a folder of its own
    _run(folder, kind, loader, False, every)
    out = folder/f'out-{kind}-{loader}-{every}'
    ref = out.rename(out.with_name(out.name + '-ref'))
    # killed by SIGKILL at epoch 1, batch 3 (the return code of a process killed by signal 9 is -9) ...
    _run(folder, kind, loader, True, every, expect_rc=-signal.SIGKILL)
    assert (out/'models'/'run1.pth').exists() and not (out/'final.pth').exists()
    # ... and the same call again
    log = _run(folder, kind, loader, False, every)
    where = 'epoch 1/3, batch 2/' if every else 'epoch 1/3'
    assert f'resuming run1 at {where}' in log, log
    weights, history = _result(folder, kind, loader, every)
    ref_weights = torch.load(ref/'final.pth', weights_only=True)
    ref_history = json.loads((ref/'history.json').read_text())
    assert weights.keys() == ref_weights.keys()
    for k in weights: assert torch.equal(weights[k], ref_weights[k]), k
    assert len(history['values']) == 3
    if kind == 'gan':   # both halves trained: the epoch table has both losses
        assert all(v is not None for v in ref_history['values'][-1][3:5]), ref_history['values']
    assert history['losses'] == ref_history['losses']
    assert [r[1:-1] for r in history['values']] == [r[1:-1] for r in ref_history['values']]   # all but the times
    # the checkpoint is an ordinary weights-only file
    state = torch.load(out/'models'/'run1.pth', weights_only=True)
    assert {'model', 'opt', 'resume'} <= set(state)


def test_another_schedule_is_refused(folder, tmp_path):
    from restorelab.test_utils import synth_learner
    learn = synth_learner(path=tmp_path)
    learn.fit_one_cycle(2, 1e-2, checkpoint='r')
    before = (tmp_path/'models'/'r.pth').read_bytes()
    with pytest.raises(Exception, match=r'lr \(\[0\.01\] in the file, \[0\.02\] now\)'):
        synth_learner(path=tmp_path).fit_one_cycle(2, 2e-2, checkpoint='r')
    with pytest.raises(Exception, match='not a checkpoint of a run'):
        learn.save('w'); synth_learner(path=tmp_path).fit(1, checkpoint='w')
    assert (tmp_path/'models'/'r.pth').read_bytes() == before   # nothing was overwritten
    with pytest.raises(ValueError, match='checkpoint_every needs checkpoint='):
        learn.fit(1, checkpoint_every=3)
