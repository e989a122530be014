"Mixed precision through the Learner: the gradient-scaler path keeps the decoupled weight decay."
import torch

from restorelab.test_utils import synth_learner


def _fit_one_epoch(scaler=None, wd=0.5):
    torch.manual_seed(0)
    learn = synth_learner(n_train=64, bs=16, wd=wd)
    learn.scaler = scaler   # what to_fp16() sets on CUDA; a CPU GradScaler runs the same code path here
    learn.fit(1, 0.1)
    return {k: v.clone() for k, v in learn.model.state_dict().items()}


def test_grad_scaler_path_applies_weight_decay():
    plain, scaled = _fit_one_epoch(), _fit_one_epoch(torch.amp.GradScaler('cpu'))
    for k in plain: torch.testing.assert_close(scaled[k], plain[k], rtol=1e-6, atol=1e-7)
    # and the decay matters here: without it the weights end elsewhere
    no_wd = _fit_one_epoch(wd=0.)
    assert not torch.allclose(no_wd['a'], plain['a'], atol=1e-4)


def test_grad_scaler_is_updated_every_step():
    scaler = torch.amp.GradScaler('cpu', init_scale=2.**10, growth_interval=1)
    _fit_one_epoch(scaler)
    assert scaler.get_scale() == 2.**10 * 2**4   # 4 finite steps, each one grows the scale
