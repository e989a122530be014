"""This CPU's measured matmul peak, float32 and bfloat16: the best of several timed square matmuls (n = 2048 and 4096),
in GFLOP/s (2·n³ per product). Run by unet_step.py in a fresh process with the contestants' thread count; prints one
JSON line. A peak that a U-Net step's achieved FLOP/s can be compared with (the fraction in the report)."""
import argparse, json, time

import torch


def peak(dtype, sizes=(2048, 4096), repeats=5) -> float:
    best = 0.
    for n in sizes:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        a @ b   # warm-up (oneDNN builds its kernel on the first call)
        for _ in range(repeats):
            t0 = time.perf_counter(); a @ b; dt = time.perf_counter() - t0
            best = max(best, 2 * n ** 3 / dt / 1e9)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--threads', type=int, default=0)
    args = p.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    print(json.dumps(dict(name='matmul-peak', fp32_gflops=round(peak(torch.float32), 1),
                          bf16_gflops=round(peak(torch.bfloat16, sizes=(2048,), repeats=3), 1),
                          threads=torch.get_num_threads(), cpu_capability=torch.backends.cpu.get_cpu_capability())), flush=True)


if __name__ == '__main__': main()
