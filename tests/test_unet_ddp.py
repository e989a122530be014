"DynamicUnet under DistributedDataParallel (2 CPU processes, gloo) and DataParallel: skips are plain arguments, so replication works."
import os, socket
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torchvision import models

from restorelab.models.unet import DynamicUnet
from restorelab.models.core import create_body


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _build():
    torch.manual_seed(0)
    return DynamicUnet(create_body(models.resnet18, pretrained=False), n_classes=3, img_size=32)


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        model = nn.parallel.DistributedDataParallel(_build())
        torch.manual_seed(100 + rank)                     # each rank its own batch
        x = torch.randn(2, 3, 32, 48)
        out = model(x)
        assert out.shape == (2, 3, 32, 48)
        out.mean().backward()
        grads = {n.removeprefix('module.'): p.grad.detach().clone() for n, p in model.named_parameters()}
        torch.save(grads, os.path.join(out_dir, f'grads{rank}.pt'))
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    g0 = torch.load(tmp_path/'grads0.pt', weights_only=True)
    g1 = torch.load(tmp_path/'grads1.pt', weights_only=True)
    assert g0.keys() == g1.keys()
    for n in g0: torch.testing.assert_close(g0[n], g1[n])     # all-reduced: every rank holds the same gradient
    enc = [n for n in g0 if n.startswith('encoder.')]
    assert enc and all(g0[n].abs().sum() > 0 for n in enc)   # the skips carry gradient into every encoder layer


def test_data_parallel_wrapper():
    model = _build()
    dp = nn.DataParallel(model)                               # on CPU it calls the module; the state_dict gets `module.`
    x = torch.randn(2, 3, 40, 40)
    model.eval(); dp.eval()
    with torch.no_grad(): torch.testing.assert_close(dp(x), model(x))
    assert all(k.startswith('module.') for k in dp.state_dict())
