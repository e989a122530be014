"""Convolutions as one matrix product: `restorelab.layers.MatmulConv2d` against `nn.Conv2d` (oneDNN), layer by layer.

    .venv/bin/python bench/matmul_conv.py [--repeats 5] [--threads N]

For each convolution shape (the layers of lesson 7's `gan_critic` at 128 px and batch 16, as one critic step sees
them, plus a few 3×3 ones) and each precision (float32 contiguous; bfloat16 autocast with channels_last weights and
input, as `learn.to_bf16(); learn.to_channels_last()` run them), the same weights in both modules, in ONE process:

- fwd+bwd: forward, then the gradients of the input and of the weights (a critic step's layer);
- fwd+bwd input: forward, then the input's gradient only (the frozen critic of a generator step).

Each timing is the median of --repeats calls, the two contestants alternating call by call so the host's drift hits
both alike. Ratio = nn.Conv2d's time ÷ MatmulConv2d's (> 1: the matrix product is faster). `gan_critic` uses
MatmulConv2d for its convs of at least `MATMUL_MIN_WEIGHTS` (2**23) weights: this table is where that number comes from.
A benchmark: it asserts no time. Writes bench/results/matmul_conv.md.
"""
import argparse, statistics, sys, time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import fmt, log, machine_info, machine_section, parse_options, started, table, write_report

from restorelab.layers import MatmulConv2d
from restorelab.models.gan import MATMUL_MIN_WEIGHTS

# (name, bs, ci, co, ks, stride, padding, input size)
CASES = [('critic 3→128 4×4/2', 16, 3, 128, 4, 2, 1, 128),
         ('critic res 128→128 3×3', 16, 128, 128, 3, 1, 1, 64),
         ('critic 256→512 4×4/2', 16, 256, 512, 4, 2, 1, 64),
         ('critic 512→1024 4×4/2', 16, 512, 1024, 4, 2, 1, 32),
         ('critic 1024→2048 4×4/2', 16, 1024, 2048, 4, 2, 1, 16),
         ('critic last 2048→1 4×4', 16, 2048, 1, 4, 1, 0, 8),
         ('3×3 512→512 at 8×8', 8, 512, 512, 3, 1, 1, 8),
         ('3×3 1024→512 at 4×4', 8, 1024, 512, 3, 1, 1, 4),
         ('3×3 1024→512 at 16×16', 8, 1024, 512, 3, 1, 1, 16)]
MODES = ('fp32', 'bf16-cl')


def step(module, x, grad_out, weights: bool, bf16: bool):
    "One forward and the backward a training step needs of this layer; autocast as the learner runs it."
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        y = module(x)
    torch.autograd.grad(y, [x, *module.parameters()] if weights else [x], grad_out.to(y.dtype))


def measure(case, mode, repeats):
    "Median seconds of each contestant and pass, and the outputs' relative difference."
    _, bs, ci, co, ks, stride, padding, size = case
    torch.manual_seed(0)
    ref = nn.Conv2d(ci, co, ks, stride=stride, padding=padding)
    mm = MatmulConv2d(ci, co, ks, stride=stride, padding=padding)
    mm.load_state_dict(ref.state_dict())
    bf16 = mode == 'bf16-cl'
    fmt_ = torch.channels_last if bf16 else torch.contiguous_format
    for m in (ref, mm): m.to(memory_format=fmt_)
    x = torch.randn(bs, ci, size, size).contiguous(memory_format=fmt_).requires_grad_()
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        y_ref, y_mm = ref(x).float(), mm(x).float()
    rel = float((y_mm - y_ref).norm() / y_ref.norm())
    grad_out = torch.randn_like(y_ref).contiguous(memory_format=fmt_)
    out = dict(rel_diff=rel)
    for weights in (True, False):
        # the input-only pass is a frozen layer's (requires_grad off, as the idle model of a GAN step): a custom
        # autograd Function sees which of its inputs require a gradient, not which ones autograd.grad asks for
        for m in (ref, mm): m.requires_grad_(weights)
        runs = {'conv': [], 'matmul': []}
        for m in (ref, mm): step(m, x, grad_out, weights, bf16)   # warm-up: oneDNN builds its kernels on the first call
        for i in range(repeats):
            for name, m in (('conv', ref), ('matmul', mm))[::1 if i % 2 == 0 else -1]:
                t0 = time.perf_counter(); step(m, x, grad_out, weights, bf16); runs[name].append(time.perf_counter() - t0)
        key = 'all' if weights else 'input'
        for name, r in runs.items(): out[f'{name}_{key}'] = statistics.median(r)
    return out


def main():
    # no --rounds, unlike the orchestrators that start a process per contestant: one process, --repeats samples
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--repeats', type=int, default=5, help='timed calls per contestant, pass and case')
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: torch default)')
    args = parse_options(p, 'matmul_conv.md')
    if args.repeats < 1: p.error('--repeats must be at least 1')
    if args.threads: torch.set_num_threads(args.threads)
    start = started()
    rows = []
    for case in CASES:
        for mode in MODES:
            r = measure(case, mode, args.repeats)
            _, bs, ci, co, ks, stride, padding, size = case
            weights = co * ci * ks * ks
            rows.append([case[0], mode, bs, f'{size}×{size}', f'{ci * ks * ks:,}', f'{weights:,}',
                         'yes' if weights >= MATMUL_MIN_WEIGHTS else 'no',
                         fmt(1e3 * r['conv_all'], 1), fmt(1e3 * r['matmul_all'], 1), fmt(r['conv_all'] / r['matmul_all']) + '×',
                         fmt(1e3 * r['conv_input'], 1), fmt(1e3 * r['matmul_input'], 1),
                         fmt(r['conv_input'] / r['matmul_input']) + '×', f"{r['rel_diff']:.1e}"])
            log(' | '.join(map(str, rows[-1])))
    info = machine_info([dict(torch=torch.__version__, threads=torch.get_num_threads(),
                              cpu_capability=torch.backends.cpu.get_cpu_capability())], start)
    header = ['layer', 'precision', 'bs', 'input', 'inputs per output', 'weights', 'gan_critic uses MatmulConv2d',
              'nn.Conv2d fwd+bwd ms', 'MatmulConv2d fwd+bwd ms', 'speed-up', 'nn.Conv2d fwd+bwd input ms',
              'MatmulConv2d fwd+bwd input ms', 'speed-up (input)', 'output rel. diff']
    intro = [f'Generated by `bench/matmul_conv.py` on {info["started"]} UTC, {args.repeats} timed calls per contestant, pass and',
             'layer (medians), the two contestants alternating in one process; same weights. fwd+bwd: forward and the gradients',
             'of the input and the weights (a critic step); fwd+bwd input: forward and the input\'s gradient (the frozen critic',
             'of a generator step). bf16-cl: bfloat16 autocast, channels_last weights and input. Speed-up = nn.Conv2d ÷ MatmulConv2d.',
             f'`gan_critic` uses MatmulConv2d for its convs of at least {MATMUL_MIN_WEIGHTS:,} weights. The input-only pass freezes',
             'the weights (requires_grad off). Output rel. diff: ‖y_matmul −',
             'y_conv‖ / ‖y_conv‖ (bfloat16 rounds differently in the two; float32 agrees to rounding).']
    cpu = [f"- CPU: {info['cpu']}, {info['cores']} cores, {info['mem']}; bf16 flags: {info['flags']}; torch CPU capability {info['cpu_capability']}",
           f"- torch {info['torch']} with {info['threads']} threads; Python {info['python']}"]
    write_report(args.out, 'Convolutions as one matrix product: `MatmulConv2d` vs `nn.Conv2d`, layer by layer',
                 [intro, table(header, 'llrlrrlrrrrrrr', rows), *machine_section(info, cpu)])


if __name__ == '__main__': main()
