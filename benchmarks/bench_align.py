"""Benchmark auralign.align at DALI's shapes against POT and the official DALI recipe.

Forward + backward of one loss evaluation on x (B, 512, 1024) audio-like and y (B, 576, 1024)
image-like tokens (synthetic, clustered, with a modality offset; seeded):

  sinkhorn      auralign.align.sinkhorn (absolute eps, tol on the L2 row-marginal error)
  pot_batch     POT's batched log-Sinkhorn: ot.batch.dist_batch + solve_batch(method="log_sinkhorn")
                on the detached cost, then <P, C> (envelope gradient), same eps and tol
  ot_exact      auralign.align.ot_exact (batched cost, threaded POT emd2, sparse-plan backward)
  official_emd  the official DALI loop: per sample ot.dist(x_i, y_i) then ot.emd2(a, b, d, 1e-1)
  mmd           auralign.align.mmd
  official_mmd  the official per-sample MMD loop (cdist^2, bandwidth from its sum, 5 kernels)

Repetitions are interleaved (method order rotates) and medians reported, for the whole step and for
its forward and backward halves (medians of each half, so they need not add up). Peak memory: on CUDA,
torch.cuda.max_memory_allocated over the step minus what was allocated before it; on CPU (where
tensors come from malloc, invisible to tracemalloc), each method runs once more in a fresh process
with glibc's mmap threshold fixed at 64 KiB (freed buffers leave the resident set) and a thread
samples /proc/self/statm every 0.5 ms during the step: peak resident set minus the one before it.

    python benchmarks/bench_align.py                       # CPU, batch 8
    python benchmarks/bench_align.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import ot
import torch

from auralign.align import mmd, ot_exact, sinkhorn

N, M, D = 512, 576, 1024


def make_tokens(batch: int, device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Clustered tokens: per clip 16 shared 'concepts'; y adds a modality offset (the gap)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(batch, 16, D, generator=g)
    pick = lambda n: centres[torch.arange(batch)[:, None], torch.randint(0, 16, (batch, n), generator=g)]  # noqa: E731
    x = pick(N) + 0.7 * torch.randn(batch, N, D, generator=g)
    y = pick(M) + 0.7 * torch.randn(batch, M, D, generator=g) + 0.2
    return x.to(device), y.to(device)


def official_emd(x, y):
    a = torch.full((N,), 1.0 / N, device=x.device)
    b = torch.full((M,), 1.0 / M, device=x.device)
    costs = torch.zeros(x.shape[0], device=x.device)
    for i in range(x.shape[0]):
        t = ot.emd2(a, b, ot.dist(x[i], y[i]), 1e-1)  # 1e-1 is `processes`, as in the official code
        if not torch.isnan(t):
            costs[i] = t
    return costs.mean()


def official_mmd(x, y):
    mult = 2.0 ** (torch.arange(5, device=x.device) - 2)
    out = torch.zeros(x.shape[0], device=x.device)
    for i in range(x.shape[0]):
        z = torch.vstack([x[i], y[i]])
        d2 = torch.cdist(z, z) ** 2
        n = z.shape[0]
        bw = d2.data.sum() / (n * n - n)
        k = torch.exp(-d2[None] / (bw * mult)[:, None, None]).sum(0)
        out[i] = k[:N, :N].mean() - 2 * k[:N, N:].mean() + k[N:, N:].mean()
    return out.mean()


def pot_batch(x, y, reg, tol, max_iter):
    # Envelope gradient the memory-safe way: solve_batch(grad="envelope") keeps the autograd graph of
    # every log-Sinkhorn iteration in POT 0.9.7 (it only detaches for "detach"; measured: > 24 GB, OOM,
    # at B=8), so solve on the detached cost and take <P, C> with P fixed, as grad="envelope" returns.
    C = ot.batch.dist_batch(x, y)
    res = ot.batch.solve_batch(
        C.detach(), reg, method="log_sinkhorn", max_iter=max_iter, tol=tol, grad="detach"
    )
    pot_batch.last = res
    return ot.batch.loss_linear_batch(C, res.plan).mean()


def build(method: str, reg: float, tol: float, max_iter: int):
    return {
        "sinkhorn": lambda x, y: sinkhorn(x, y, eps=reg, eps_scale=None, tol=tol, max_iter=max_iter),
        "pot_batch": lambda x, y: pot_batch(x, y, reg, tol, max_iter),
        "ot_exact": lambda x, y: ot_exact(x, y),
        "official_emd": official_emd,
        "mmd": lambda x, y: mmd(x, y),
        "official_mmd": official_mmd,
    }[method]


def step(fn, x, y, device: str = "cpu"):
    """One forward + backward; returns (loss, x.grad, forward seconds, backward seconds)."""
    xg, yg = x.detach().requires_grad_(), y.detach().requires_grad_()
    sync(device)
    t0 = time.perf_counter()
    loss = fn(xg, yg)
    sync(device)
    t1 = time.perf_counter()
    loss.backward()
    sync(device)
    t2 = time.perf_counter()
    return float(loss.detach()), xg.grad, t1 - t0, t2 - t1


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_cpu_subprocess(method: str, args) -> float:
    """Peak resident-memory increase (MB) over one step of ``method``, measured in a fresh process."""
    cmd = [
        sys.executable,
        __file__,
        "--_memory",
        method,
        "--batch",
        str(args.batch),
        "--reg",
        repr(args._reg),
    ]
    cmd += ["--tol", repr(args.tol), "--max-iter", str(args.max_iter)]
    # A fixed mmap threshold makes glibc return every large buffer to the OS on free, so the resident
    # set tracks live memory (the default dynamic threshold would keep freed buffers resident).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _memory_child(args) -> None:
    fn = build(args._memory, args.reg, args.tol, args.max_iter)
    xs, ys = make_tokens(1, "cpu", seed=1)
    if args._memory not in ("official_emd", "official_mmd"):  # these hard-code N, M
        step(fn, xs[:, :64], ys[:, :64])  # initialise libraries and thread pools
    x, y = make_tokens(args.batch, "cpu")
    gc.collect()
    base = peak = _rss_bytes()
    done = threading.Event()

    def poll() -> None:  # torch kernels and POT's solver release the GIL, so polling keeps up
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.0005)

    t = threading.Thread(target=poll)
    t.start()
    step(fn, x, y)
    peak = max(peak, _rss_bytes())
    done.set()
    t.join()
    print(json.dumps({"peak_mb": (peak - base) / 2**20}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per method (interleaved)")
    p.add_argument("--eps", type=float, default=0.05, help="Sinkhorn eps, relative to the batch's mean cost")
    p.add_argument(
        "--tol", type=float, default=1e-5, help="L2 row-marginal tolerance (POT's criterion), both solvers"
    )
    p.add_argument("--max-iter", type=int, default=2000)
    p.add_argument("--methods", default="sinkhorn,pot_batch,ot_exact,official_emd,mmd,official_mmd")
    p.add_argument("--no-memory", action="store_true", help="skip the CPU peak-memory subprocesses")
    p.add_argument("--_memory", help=argparse.SUPPRESS)
    p.add_argument("--reg", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._memory:
        return _memory_child(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible to torch")

    methods = args.methods.split(",")
    load_start = os.getloadavg()[0]  # the machine may be shared: report how busy it was
    x, y = make_tokens(args.batch, args.device)
    with torch.no_grad():
        mean_cost = float(ot.batch.dist_batch(x, y).mean())
    reg = args.eps * mean_cost
    args._reg = reg
    fns = {m: build(m, reg, args.tol, args.max_iter) for m in methods}

    # Warm-up (and values/accuracy) once per method.
    values, extra, grads = {}, {}, {}
    for m in methods:
        values[m], grads[m], *_ = step(fns[m], x, y, args.device)
        if m == "pot_batch":
            plan = pot_batch.last.plan
            extra[m] = float((plan.sum(2) - 1.0 / N).norm(dim=1).max())
        if m == "sinkhorn":
            _, info = sinkhorn(
                x, y, eps=reg, eps_scale=None, tol=args.tol, max_iter=args.max_iter, return_info=True
            )
            extra[m] = float(info["err"].max())
            extra["sinkhorn_iters"] = info["n_iter"]
    times: dict[str, list[float]] = {m: [] for m in methods}
    halves: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    for r in range(args.reps):
        for m in methods[r % len(methods) :] + methods[: r % len(methods)]:
            *_, tf, tb = step(fns[m], x, y, args.device)
            times[m].append(tf + tb)
            halves[m].append((tf, tb))

    peaks = {}
    for m in methods:
        if args.device == "cuda":
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            step(fns[m], x, y)
            torch.cuda.synchronize()
            peaks[m] = (torch.cuda.max_memory_allocated() - base) / 2**20
        elif not args.no_memory:
            peaks[m] = peak_cpu_subprocess(m, args)

    B = args.batch
    cost_mb = B * N * M * 4 / 2**20
    grads_mb = B * (N + M) * D * 4 / 2**20
    dev = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    print(
        f"\n{args.device} ({dev}), torch {torch.__version__}, POT {ot.__version__}, threads {torch.get_num_threads()}"
    )
    print(
        f"B={B}, N={N}, M={M}, D={D}; eps = {args.eps} x mean cost = {reg:.3g}; tol {args.tol}; reps {args.reps}"
    )
    print(f"cost matrices: {cost_mb:.1f} MB (fp32); x.grad + y.grad: {grads_mb:.1f} MB")
    print(f"1-min load average: {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end\n")
    print(
        "| method | ms/step (median) | forward / backward ms | samples/s | peak MB | peak - grads MB "
        "| x cost | value |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for m in methods:
        med = statistics.median(times[m])
        fb = " / ".join(f"{statistics.median(h) * 1e3:.0f}" for h in zip(*halves[m], strict=True))
        pk = peaks.get(m)
        pk_s = f"{pk:.0f}" if pk is not None else "-"
        net = f"{pk - grads_mb:.0f}" if pk is not None else "-"
        ratio = f"{(pk - grads_mb) / cost_mb:.1f}" if pk is not None else "-"
        print(
            f"| {m} | {med * 1e3:.0f} | {fb} | {B / med:.1f} | {pk_s} | {net} | {ratio} | {values[m]:.6g} |"
        )
    med = {m: statistics.median(v) for m, v in times.items()}
    print()
    if "sinkhorn" in med and "pot_batch" in med:
        print(
            f"sinkhorn vs POT ot.batch log-Sinkhorn: {med['pot_batch'] / med['sinkhorn']:.2f}x faster; "
            f"final L2 row-marginal error {extra.get('sinkhorn', float('nan')):.1e} (ours, "
            f"{extra.get('sinkhorn_iters')} iterations) vs {extra.get('pot_batch', float('nan')):.1e} (POT); "
            f"relative value difference {abs(values['sinkhorn'] - values['pot_batch']) / abs(values['pot_batch']):.1e}"
        )
    if "ot_exact" in med and "official_emd" in med:
        print(
            f"ot_exact vs official per-sample emd2 loop: {med['official_emd'] / med['ot_exact']:.2f}x faster; "
            f"value difference {abs(values['ot_exact'] - values['official_emd']):.2e}; max |x.grad "
            f"difference| / max |x.grad| "
            f"{float((grads['ot_exact'] - grads['official_emd']).abs().max() / grads['official_emd'].abs().max()):.1e}"
        )
    if "mmd" in med and "official_mmd" in med:
        print(f"mmd vs official per-sample loop: {med['official_mmd'] / med['mmd']:.2f}x faster")
    if "sinkhorn" in values and "ot_exact" in values:
        print(f"sinkhorn / exact OT value: {values['sinkhorn'] / values['ot_exact']:.4f}")
    print("raw times (s):", json.dumps({m: [round(t, 4) for t in v] for m, v in times.items()}))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
