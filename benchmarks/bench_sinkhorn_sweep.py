"""Sinkhorn across regularisation strengths: auralign against POT and GeomLoss on the same problems.

At each eps of a sweep (relative to the batch's mean cost, turned into one absolute eps shared by all
three), one forward + backward of the entropic transport between x (B, 512, 1024) and y (B, 576, 1024)
(bench_align.make_tokens: clustered, with a modality offset), on C_ij = |x_i - y_j|^2:

  auralign   auralign.align.sinkhorn(eps=eps_abs, eps_scale=None, tol)
  pot        POT's batched log-Sinkhorn on the detached cost (ot.batch.solve_batch, method="log_sinkhorn",
             same tol), then <P, C> with P fixed: the envelope gradient (bench_align.pot_batch)
  geomloss   geomloss.SamplesLoss("sinkhorn", p=2, debias=False, backend="tensorized"). Its cost is
             |x - y|^2 / 2, so blur = sqrt(eps_abs / 2) poses the same problem. GeomLoss has no
             tolerance: it anneals eps from the cloud's diameter down to blur^p in steps of `scaling`. Each
             scaling of --scalings is tried in turn, from the fewest iterations up, and the first whose plan
             meets the tolerance is timed. If none meets it, the last is timed and the row says so.

Accuracy is the same for all three: the largest over the batch of the L2 norm of the row-marginal
violation of the returned plan, ||P 1 - a||_2 <= tol (POT's stopping rule; auralign and POT check it
every 10 iterations). Repetitions are interleaved per eps; medians are reported.

    python benchmarks/bench_sinkhorn_sweep.py                          # CPU, batch 8
    python benchmarks/bench_sinkhorn_sweep.py --device cuda --batch 256
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

import ot
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auralign.align import sinkhorn
from bench_align import D, M, N, make_tokens, pot_batch, step, sync

SWEEP = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
SCALINGS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995)


def row_error(plan: torch.Tensor) -> float:
    """max over the batch of ||P 1 - a||_2 (uniform a)."""
    return float((plan.sum(2) - 1.0 / plan.shape[1]).norm(dim=1).max())


def geomloss_fn(eps_abs: float, scaling: float):
    from geomloss import SamplesLoss

    blur = math.sqrt(eps_abs / 2)
    loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, debias=False, backend="tensorized")
    return lambda x, y: loss(x, y).mean()


def geomloss_error(x: torch.Tensor, y: torch.Tensor, eps_abs: float, scaling: float) -> float:
    """Row-marginal error of the plan of GeomLoss's potentials: P = a b exp((F + G - C/2) / eps_g)."""
    from geomloss import SamplesLoss

    eps_g = eps_abs / 2
    loss = SamplesLoss(
        "sinkhorn",
        p=2,
        blur=math.sqrt(eps_g),
        scaling=scaling,
        debias=False,
        potentials=True,
        backend="tensorized",
    )
    with torch.no_grad():
        F, G = loss(x, y)
        half_cost = ot.batch.dist_batch(x, y) / 2
        log_p = (F[:, :, None] + G[:, None, :] - half_cost) / eps_g - math.log(N) - math.log(M)
    return row_error(log_p.exp())


def auralign_fn(eps_abs: float, tol: float, max_iter: int):
    return lambda x, y: sinkhorn(x, y, eps=eps_abs, eps_scale=None, tol=tol, max_iter=max_iter)


def pot_fn(eps_abs: float, tol: float, max_iter: int):
    return lambda x, y: pot_batch(x, y, eps_abs, tol, max_iter)


def accuracies(x, y, eps_abs: float, args) -> tuple[dict[str, float], dict]:
    """auralign's row-marginal error and iterations at this eps; GeomLoss's: the first scaling that meets
    the tolerance (POT's error is read from its timed warm-up plan)."""
    with torch.no_grad():
        _, info = sinkhorn(
            x, y, eps=eps_abs, eps_scale=None, tol=args.tol, max_iter=args.max_iter, return_info=True
        )
    err = {"auralign": float(info["err"].max())}
    extra = {"auralign_iters": int(info["n_iter"])}
    if "geomloss" in args.methods:
        for scaling in args.scalings:
            err["geomloss"] = geomloss_error(x, y, eps_abs, scaling)
            extra["geomloss_scaling"] = scaling
            if err["geomloss"] <= args.tol:
                break
        extra["geomloss_met_tol"] = err["geomloss"] <= args.tol
    return err, extra


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per solver and eps (interleaved)")
    p.add_argument("--eps", default=",".join(map(str, SWEEP)), help="eps values relative to the mean cost")
    p.add_argument("--tol", type=float, default=1e-5, help="L2 row-marginal error every solver must reach")
    p.add_argument("--max-iter", type=int, default=20000)
    p.add_argument("--methods", default="auralign,pot,geomloss")
    p.add_argument("--scalings", default=",".join(map(str, SCALINGS)), help="GeomLoss scalings to try")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args()
    args.methods = args.methods.split(",")
    args.scalings = [float(s) for s in args.scalings.split(",")]
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device visible to torch")

    load_start = os.getloadavg()[0]
    x, y = make_tokens(args.batch, args.device)
    with torch.no_grad():
        mean_cost = float(ot.batch.dist_batch(x, y).mean())
    rows = []
    for eps_rel in (float(e) for e in args.eps.split(",")):
        eps_abs = eps_rel * mean_cost
        err, extra = accuracies(x, y, eps_abs, args)
        fns = {
            "auralign": auralign_fn(eps_abs, args.tol, args.max_iter),
            "pot": pot_fn(eps_abs, args.tol, args.max_iter),
            "geomloss": geomloss_fn(eps_abs, extra.get("geomloss_scaling", 0.5)),
        }
        fns = {m: fns[m] for m in args.methods}
        if "geomloss" in fns and not extra["geomloss_met_tol"]:
            # GeomLoss stopped short of the tolerance: also time auralign stopping at GeomLoss's error
            fns["auralign@geomloss"] = auralign_fn(eps_abs, err["geomloss"], args.max_iter)
            with torch.no_grad():
                _, info = sinkhorn(
                    x,
                    y,
                    eps=eps_abs,
                    eps_scale=None,
                    tol=err["geomloss"],
                    max_iter=args.max_iter,
                    return_info=True,
                )
            err["auralign@geomloss"] = float(info["err"].max())
        for fn in fns.values():  # warm-up
            step(fn, x, y, args.device)
        if "pot" in fns:
            err["pot"] = row_error(pot_batch.last.plan)
        times: dict[str, list[float]] = {m: [] for m in fns}
        for r in range(args.reps):
            order = list(fns)[r % len(fns) :] + list(fns)[: r % len(fns)]
            for m in order:
                *_, tf, tb = step(fns[m], x, y, args.device)
                times[m].append(tf + tb)
        sync(args.device)
        med = {m: statistics.median(v) for m, v in times.items()}
        rows.append({"eps_rel": eps_rel, "eps_abs": eps_abs, "ms": med, "err": err, **extra, "raw_s": times})
        print(
            f"eps {eps_rel:g}: "
            + ", ".join(f"{m} {med[m] * 1e3:.0f} ms (err {err[m]:.1e})" for m in fns)
            + f"; auralign {extra['auralign_iters']} iterations",
            flush=True,
        )

    dev = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    print(
        f"\n{args.device} ({dev}), torch {torch.__version__}, POT {ot.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"B={args.batch}, N={N}, M={M}, D={D}; mean cost {mean_cost:.4g}; tol {args.tol}; reps {args.reps}")
    print(f"1-min load average: {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end\n")
    head = "| eps / mean cost | auralign iterations | " + " | ".join(f"{m} ms (err)" for m in args.methods)
    ratios = [m for m in args.methods if m != "auralign"]
    geom = "geomloss" in args.methods
    print(
        head
        + "".join(f" | {m} / auralign" for m in ratios)
        + (" | auralign at GeomLoss's error, ms | geomloss / that |" if geom else " |")
    )
    print("|---:" * (2 + len(args.methods) + len(ratios) + 2 * geom) + "|")
    for r in rows:
        cells = [f"{r['ms'][m] * 1e3:.0f} ({r['err'][m]:.1e})" for m in args.methods]
        ratio = [f"{r['ms'][m] / r['ms']['auralign']:.2f}x" for m in ratios]
        if geom:
            i = args.methods.index("geomloss")
            mark = "" if r["geomloss_met_tol"] else ", tol not met"
            cells[i] = cells[i][:-1] + f", scaling {r['geomloss_scaling']}{mark})"
            same = r["ms"].get("auralign@geomloss")
            ratio += [f"{same * 1e3:.0f}", f"{r['ms']['geomloss'] / same:.2f}x"] if same else ["-", "-"]
        print(f"| {r['eps_rel']:g} | {r['auralign_iters']} | " + " | ".join(cells + ratio) + " |")
    if args.json:
        args.json.write_text(json.dumps({"mean_cost": mean_cost, "tol": args.tol, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
