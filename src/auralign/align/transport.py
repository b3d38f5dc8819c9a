"""Optimal transport between token sets: exact EMD (POT underneath) and batched log-stabilised Sinkhorn.

Both return the transport cost <P, C> per sample for the squared-Euclidean cost C_ij = |x_i - y_j|^2,
with envelope gradients: dC = P (hence dx_i = 2 sum_j P_ij (x_i - y_j)), da = f - mean(f),
db = g - mean(g), where f, g are the dual potentials (POT's convention for ``ot.emd2``). Nothing
backpropagates through solver iterations, so memory stays at a few (B, N, M) buffers.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from auralign.align._checks import (
    check_finite,
    check_tokens,
    check_weights,
    reduce,
    sqeuclidean_cost,
    work_dtype,
)

__all__ = ["ot_exact", "sinkhorn"]


class _EnvelopeOT(torch.autograd.Function):
    """Attaches envelope gradients of an OT value to x, y, a, b given the plan P and potentials f, g.

    x, y are inputs only to place the node in the graph; the backward uses xw, yw (detached, in the
    working dtype, padded tokens zeroed) and the centring shift, so garbage in padding cannot leak.
    """

    @staticmethod
    def forward(ctx, value, x, y, a, b, plan, f, g, shift, xw, yw):  # type: ignore[override]
        ctx.save_for_backward(xw, yw, plan, f, g, shift)
        ctx.dtypes = (x.dtype, y.dtype, a.dtype, b.dtype)
        return value.clone()

    @staticmethod
    def backward(ctx, go):  # type: ignore[override]
        xw, yw, P, f, g, s = ctx.saved_tensors
        go = go.to(P.dtype)
        gx = gy = ga = gb = None
        s = s.unsqueeze(1)
        two_go = 2 * go.view(-1, 1, 1)
        if ctx.needs_input_grad[1]:  # dx_i = 2 sum_j P_ij (x_i - y_j), per sample to keep temporaries small
            gx = torch.empty(xw.shape, dtype=ctx.dtypes[0], device=xw.device)
            for i in range(xw.shape[0]):
                xi, yi = xw[i] - s[i], yw[i] - s[i]
                gx[i] = two_go[i] * (P[i].sum(1, keepdim=True) * xi - P[i] @ yi)
        if ctx.needs_input_grad[2]:
            gy = torch.empty(yw.shape, dtype=ctx.dtypes[1], device=yw.device)
            for i in range(yw.shape[0]):
                xi, yi = xw[i] - s[i], yw[i] - s[i]
                gy[i] = two_go[i] * (P[i].sum(0).unsqueeze(1) * yi - P[i].T @ xi)
        if ctx.needs_input_grad[3]:
            ga = (go.view(-1, 1) * f).to(ctx.dtypes[2])
        if ctx.needs_input_grad[4]:
            gb = (go.view(-1, 1) * g).to(ctx.dtypes[3])
        return None, gx, gy, ga, gb, None, None, None, None, None, None


def _checked_inputs(x: Tensor, y: Tensor, a, b, x_mask, y_mask) -> tuple:
    """Validated tokens, masks and weights, shared by the solvers: (x, y, x_mask, y_mask, unbatched,
    working dtype, a, b), with NaN/Inf refused in real tokens."""
    x, y, x_mask, y_mask, unbatched = check_tokens(x, y, x_mask, y_mask)
    wdtype = work_dtype(x, y)
    a_w = check_weights(a, x_mask, "a", wdtype, unbatched)
    b_w = check_weights(b, y_mask, "b", wdtype, unbatched)
    for t, m, name in ((x, x_mask, "x"), (y, y_mask, "y")):
        # A finite sum in the input's dtype already proves every entry finite, and costs 0.4 ms where
        # check_finite's float64 sum costs ~22 ms per (8, 512, 1024) fp32 tensor on this CPU (no
        # vectorised cast-and-accumulate); check_finite still decides overflowing sums and padding.
        if not bool(torch.isfinite(t.detach().sum())):
            check_finite(t, m, name)
    return x, y, x_mask, y_mask, unbatched, wdtype, a_w, b_w


def _centred_dual(f: Tensor, mask: Tensor) -> Tensor:
    """Potentials centred on their mean over valid tokens (POT's ``u - mean(u)``), zero on padding."""
    m = mask.to(f.dtype)
    f = torch.where(mask, f, 0)
    return (f - (f * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)) * m


def _prepare(x, y, x_mask, y_mask, wdtype):
    """Cast to the working dtype, zero padded tokens, and pick a shared centring shift (no grad)."""
    xw, yw = x.detach().to(wdtype), y.detach().to(wdtype)
    if not bool(x_mask.all()):
        xw = xw.masked_fill(~x_mask.unsqueeze(-1), 0)
    if not bool(y_mask.all()):
        yw = yw.masked_fill(~y_mask.unsqueeze(-1), 0)
    # C is translation invariant: centring keeps the Gram expansion accurate when tokens share an offset.
    xm, ym = x_mask.to(wdtype).unsqueeze(-1), y_mask.to(wdtype).unsqueeze(-1)
    # Padded tokens are zero already, so plain sums (no (B, N, D) product with the mask) suffice.
    shift = (xw.sum(1) + yw.sum(1)) / (xm.sum(1) + ym.sum(1))
    return xw, yw, shift


def _cost(xw: Tensor, yw: Tensor, shift: Tensor, x_mask: Tensor, y_mask: Tensor, chunk: int = 1) -> Tensor:
    """(B, N, M) squared-Euclidean cost of the centred tokens, ``chunk`` samples at a time so that the
    centred copies are chunk-sized temporaries (batch-sized copies of x and y can dwarf the cost
    matrices: 1.1 GB against 0.3 GB at DALI's batch of 256)."""
    B = xw.shape[0]
    if chunk >= B:
        s = shift.unsqueeze(1)
        C = sqeuclidean_cost(xw - s, yw - s)
    else:
        C = xw.new_empty(B, xw.shape[1], yw.shape[1])
        for lo in range(0, B, chunk):
            k = slice(lo, lo + chunk)
            s = shift[k].unsqueeze(1)
            C[k] = sqeuclidean_cost(xw[k] - s, yw[k] - s)
    if not (bool(x_mask.all()) and bool(y_mask.all())):
        C.masked_fill_(~(x_mask.unsqueeze(-1) & y_mask.unsqueeze(-2)), 0)
    return C


@dataclass
class _Solution:
    """One batched Sinkhorn solve: the value (B,); what its envelope gradient needs (plan P, potentials f, g
    in cost units, the centring shift, the detached working-dtype tokens xw, yw with padding zeroed); the
    absolute eps (B,) and the solver's info."""

    value: Tensor
    plan: Tensor
    f: Tensor
    g: Tensor
    shift: Tensor
    xw: Tensor
    yw: Tensor
    eps: Tensor
    info: dict


def _attach(
    sol: _Solution, *, x: Tensor, y: Tensor, a: Tensor, b: Tensor, x_mask: Tensor, y_mask: Tensor
) -> Tensor:
    """Return ``sol.value`` carrying envelope gradients w.r.t. whichever of x, y, a, b require grad."""
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (x, y, a, b))):
        return sol.value
    fc, gc = _centred_dual(sol.f, x_mask), _centred_dual(sol.g, y_mask)
    return _EnvelopeOT.apply(sol.value, x, y, a, b, sol.plan, fc, gc, sol.shift, sol.xw, sol.yw)


# ----------------------------------------------------------------------------------------- exact


def _plan_grads_numpy(rows, cols, w, ptr, *, xw, yw, s, gx, gy) -> None:
    """CPU version of ``_plan_grads_torch`` in numpy/scipy, which run single-threaded: torch runs ~10
    small OpenMP regions per sample, and on shared cores each waits for a descheduled thread (the
    backward at DALI's shapes, load average 6 on 2 cores: 1.5 s with torch, 0.06 s with numpy)."""
    from scipy.sparse import csr_matrix  # scipy: a dependency of auralign (and of POT)

    rows, cols, w, xw, yw, s = (t.numpy() for t in (rows, cols, w, xw, yw, s))
    gx, gy = (None if t is None else t.numpy() for t in (gx, gy))
    for i in range(len(ptr) - 1):
        k = slice(ptr[i], ptr[i + 1])
        xi, yi = xw[i] - s[i], yw[i] - s[i]
        P = csr_matrix((w[k], (rows[k], cols[k])), shape=(xi.shape[0], yi.shape[0]))
        if gx is not None:
            np.subtract(np.asarray(P.sum(1)) * xi, P @ yi, out=gx[i])
        if gy is not None:
            np.subtract(np.asarray(P.sum(0)).T * yi, P.T @ xi, out=gy[i])


def _plan_grads_torch(rows, cols, w, ptr, *, xw, yw, s, gx, gy) -> None:
    """gx[i] = rowsum(P) xs - P ys and gy[i] = colsum(P) ys - P^T xs with xs, ys = xw[i], yw[i] centred
    by s[i], for the sparse plan P of sample i (entries ``ptr[i]:ptr[i + 1]`` of rows, cols, w)."""
    for i in range(len(ptr) - 1):
        r, c, wi = rows[ptr[i] : ptr[i + 1]], cols[ptr[i] : ptr[i + 1]], w[ptr[i] : ptr[i + 1]]
        xi, yi = xw[i] - s[i], yw[i] - s[i]
        N, M = xi.shape[0], yi.shape[0]
        if gx is not None:
            P = torch.sparse_coo_tensor(torch.stack([r, c]), wi, (N, M), check_invariants=False)
            rs = wi.new_zeros(N).index_add_(0, r, wi).unsqueeze(1)
            gx[i] = torch.sparse.mm(P, yi).neg_().addcmul_(rs, xi)
        if gy is not None:
            PT = torch.sparse_coo_tensor(torch.stack([c, r]), wi, (M, N), check_invariants=False)
            cs = wi.new_zeros(M).index_add_(0, c, wi).unsqueeze(1)
            gy[i] = torch.sparse.mm(PT, xi).neg_().addcmul_(cs, yi)


class _SparsePlanOT(torch.autograd.Function):
    """Envelope gradients of exact OT from its sparse plan. The network simplex returns a vertex of the
    transport polytope, at most N + M - 1 non-zeros (1,087 of 294,912 at 512 x 576), so
    dx = 2 (rowsum(P) x - P y) is a sparse-dense product, not two dense (N, M) @ (M, D) matmuls
    (those took 63 of the 266 ms of a 512 x 576 x 1024 batch of 8 on 2 cores).

    ``rows, cols, mass`` are the plan's non-zeros concatenated over the batch, sample i at
    ``ptr[i]:ptr[i + 1]``; xw, yw are the detached working-dtype tokens (padding zeroed, and never in
    the plan) and ``shift`` the centring of the cost (it cancels in exact arithmetic and keeps
    rowsum(P) x - P y from cancelling when tokens share a large offset).
    """

    @staticmethod
    def forward(ctx, value, x, y, a, b, rows, cols, mass, f, g, xw, yw, shift, ptr):  # type: ignore[override]
        ctx.save_for_backward(rows, cols, mass, f, g, xw, yw, shift)
        ctx.ptr = ptr
        ctx.dtypes = (x.dtype, y.dtype, a.dtype, b.dtype)
        return value.clone()

    @staticmethod
    def backward(ctx, go):  # type: ignore[override]
        rows, cols, mass, f, g, xw, yw, s = ctx.saved_tensors
        go = go.to(mass.dtype)
        need_x, need_y = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        gx = torch.empty_like(xw) if need_x else None
        gy = torch.empty_like(yw) if need_y else None
        if need_x or need_y:
            counts = torch.tensor([hi - lo for lo, hi in itertools.pairwise(ctx.ptr)], device=go.device)
            w = mass * (2 * go).repeat_interleave(counts)
            grads = _plan_grads_numpy if xw.device.type == "cpu" else _plan_grads_torch
            grads(rows, cols, w, ctx.ptr, xw=xw, yw=yw, s=s, gx=gx, gy=gy)
        gx = gx.to(ctx.dtypes[0]) if need_x else None
        gy = gy.to(ctx.dtypes[1]) if need_y else None
        ga = (go.view(-1, 1) * f).to(ctx.dtypes[2]) if ctx.needs_input_grad[3] else None
        gb = (go.view(-1, 1) * g).to(ctx.dtypes[3]) if ctx.needs_input_grad[4] else None
        return None, gx, gy, ga, gb, None, None, None, None, None, None, None, None, None


def _emd_one(a_i: np.ndarray, b_i: np.ndarray, C_i: np.ndarray, need_grad: bool, max_iter: int):
    """One ``ot.emd2`` through POT's torch backend; returns (cost, None) or (cost, (rows, cols, mass,
    du, dv)): the plan's non-zeros and the gradients POT's ValFunction would attach to a and b.

    Runs in solver threads, so everything around the solve is numpy (single-threaded, GIL released):
    a torch op here would start an OpenMP team per solver thread and oversubscribe the cores."""
    import ot  # POT; imported lazily so auralign.align imports without the [ot] extra

    a_t, b_t, C_t = (torch.from_numpy(np.asarray(t, dtype=np.float64)) for t in (a_i, b_i, C_i))
    # The plan and potentials are read from the log instead of autograd.grad: the same arrays POT hands
    # its ValFunction (G; u - mean(u), v - mean(v)), without a backward pass over a dense (N, M) G.
    cost, log = ot.emd2(a_t, b_t, C_t, numItermax=max_iter, log=True, return_matrix=need_grad)
    if not need_grad:
        return cost, None
    G = log["G"].numpy()
    k = (G.ravel() != 0).nonzero()[0]  # 0.1 ms; np.nonzero(G) on the float (N, M) array takes 1.3 ms
    r, c = np.divmod(k, G.shape[1])
    u, v = log["u"].numpy(), log["v"].numpy()
    return cost, (r, c, G.ravel()[k], u - np.mean(u), v - np.mean(v))  # POT's exact ops for du, dv


def _usable_cpus() -> int:
    """CPUs this process may run on (a container's affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def ot_exact(
    x: Tensor,
    y: Tensor,
    *,
    x_mask: Tensor | None = None,
    y_mask: Tensor | None = None,
    a: Tensor | None = None,
    b: Tensor | None = None,
    workers: int | None = None,
    max_iter: int = 100_000,
    reduction: str = "mean",
) -> Tensor:
    """Exact OT cost min_P <P, C> with C_ij = |x_i - y_j|^2 (POT ``ot.emd2``, network simplex).

    DALI's OT loss: per-clip EMD between audio and image tokens, mean over the batch. The (B, N, M)
    cost matrices are computed in one batched bmm on x's device; the B network-simplex solves run
    in a thread pool (POT's solver releases the GIL, so threads give real parallelism). Gradients are
    POT's: dC = optimal plan, da = u - mean(u), db = v - mean(v), propagated to x and y through the
    plan's N + M - 1 non-zeros.

    Args:
        x: (B, N, D) or (N, D) source tokens (e.g. audio).
        y: (B, M, D) or (M, D) target tokens (e.g. CLIP image tokens).
        a, b: token weights (N,)/(B, N) and (M,)/(B, M) summing to 1; uniform over valid tokens if None.
        x_mask, y_mask: (B, N)/(B, M) bool, True for real tokens; padded tokens get no mass.
        workers: solver threads (default: min(B, usable CPUs)); 1 runs sequentially.
        max_iter: network-simplex iteration cap (POT's ``numItermax``; POT warns when it is hit).
        reduction: "mean" (DALI), "sum" or "none" (per-sample costs, shape (B,)).

    Returns:
        Scalar (or (B,) for reduction="none") in float32, or float64 for float64 inputs.
    """
    x, y, x_mask, y_mask, unbatched, wdtype, a_w, b_w = _checked_inputs(x, y, a, b, x_mask, y_mask)
    B = x.shape[0]
    need_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (x, y, a_w, b_w))

    with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
        xw, yw, shift = _prepare(x, y, x_mask, y_mask, wdtype)
        # Chunks of up to 64 MiB of centred tokens (the whole batch of 8 at DALI's shapes): one sample at
        # a time is ~10 small OpenMP regions per sample, each waiting for a descheduled thread when the
        # cores are shared (this step at DALI's shapes, load average 7 on 2 cores: 1.4 s vs 0.3 s).
        chunk = max(1, 2**26 // ((x.shape[1] + y.shape[1]) * x.shape[2] * xw.element_size()))
        C = _cost(xw, yw, shift, x_mask, y_mask, chunk).cpu()
    C_n, a_n, b_n = C.numpy(), a_w.detach().cpu().numpy(), b_w.detach().cpu().numpy()
    full = bool(x_mask.all()) and bool(y_mask.all())
    rows = [m.nonzero()[0] for m in x_mask.cpu().numpy()] if not full else None
    cols = [m.nonzero()[0] for m in y_mask.cpu().numpy()] if not full else None

    def job(i: int):
        if full:
            return _emd_one(a_n[i], b_n[i], C_n[i], need_grad, max_iter)
        r, c = rows[i], cols[i]
        cost, res = _emd_one(a_n[i, r], b_n[i, c], C_n[i][np.ix_(r, c)], need_grad, max_iter)
        if res is not None:  # back to the padded token indices
            pr, pc, mass, du, dv = res
            res = (r[pr], c[pc], mass, du, dv)
        return cost, res

    workers = min(B, workers or _usable_cpus())
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = list(pool.map(job, range(B)))
    else:
        out = [job(i) for i in range(B)]
    dev = x.device
    cost = torch.stack([c for c, _ in out]).to(device=dev, dtype=wdtype)
    if not need_grad:
        return reduce(cost, reduction, unbatched)
    f = np.zeros((B, x.shape[1]))
    g = np.zeros((B, y.shape[1]))
    for i, (_, (*_, du, dv)) in enumerate(out):
        if full:
            f[i], g[i] = du, dv
        else:
            f[i, rows[i]], g[i, cols[i]] = du, dv
    # POT's potentials are centred over the solved (valid) tokens already; padding stays 0.
    f, g = (torch.from_numpy(t).to(device=dev, dtype=wdtype) for t in (f, g))
    ptr = [0, *itertools.accumulate(len(res[0]) for _, res in out)]
    rows_p, cols_p, mass = (torch.from_numpy(np.concatenate([res[k] for _, res in out])) for k in range(3))
    rows_p, cols_p, mass = rows_p.to(dev), cols_p.to(dev), mass.to(device=dev, dtype=wdtype)
    out_v = _SparsePlanOT.apply(cost, x, y, a_w, b_w, rows_p, cols_p, mass, f, g, xw, yw, shift, ptr)
    return reduce(out_v, reduction, unbatched)


# -------------------------------------------------------------------------------------- sinkhorn


# exp() of arguments far below the fp32 normal range hits slow denormal paths (measured 10-30x slower
# on x86); entries that small relative to the row maximum carry no mass, so arguments are clamped.
_EXP_FLOOR = -80.0


def _lse_(buf: Tensor, dim: int) -> Tensor:
    """In-place log-sum-exp over ``dim`` (destroys buf): avoids the two (B, N, M) temporaries of torch's."""
    m = buf.amax(dim, keepdim=True)
    buf.sub_(m).clamp_min_(_EXP_FLOOR).exp_()
    return buf.sum(dim).log_() + m.squeeze(dim)


def _bmv(A: Tensor, v: Tensor, out: Tensor) -> Tensor:
    """Batched mat-vec (B, n, m) @ (B, m) -> (B, n). On CPU, MKL's bmm with one column is several
    times slower than a loop of gemv calls (measured), so loop there; bmm elsewhere."""
    if A.device.type != "cpu":
        return torch.bmm(A, v.unsqueeze(2), out=out.unsqueeze(2)).squeeze(2)
    for i in range(A.shape[0]):
        torch.mv(A[i], v[i], out=out[i])
    return out


@torch.no_grad()
def _sinkhorn_potentials(
    K: Tensor,
    a: Tensor,
    b: Tensor,
    *,
    tol: float | None,
    max_iter: int,
    block: int = 10,
    max_log_scale: float = 30.0,
) -> tuple[Tensor, Tensor, Tensor, dict]:
    """Balanced Sinkhorn on K = -C/eps (B, N, M) with weights a (B, N), b (B, M).

    Returns (P, F, G, info): the plan P = a_i exp(K_ij + F_i + G_j) b_j (in a new (B, N, M) buffer),
    potentials in units of eps (f = eps F), and info with ``n_iter``, ``err`` (final L2 norm of the
    row-marginal violation per sample, POT's stopping criterion) and the block counts.

    Log-stabilised scaling (Schmitzer 2019): potentials are absorbed into E = exp(K + F + G) at the
    start of every block of ``block`` iterations; inside a block each iteration is two batched
    mat-vecs over E (no exp, no logsumexp). A block whose scalings leave [e^-30, e^30] or turn
    non-finite is discarded and redone with exact log-domain updates, so small eps and huge costs
    stay safe. Both paths iterate the same map as POT's ``sinkhorn_log``. Convergence (tol on the
    row-marginal error; columns are exact after each iteration) is tested once per block.
    """
    B, N, M = K.shape
    loga, logb = a.log(), b.log()  # -inf on zero weights: those tokens drop out of every LSE
    F, G = K.new_zeros(B, N), K.new_zeros(B, M)
    E = torch.empty_like(K)  # scratch for the log-domain steps, exp(K + F + G) for the scaling steps
    ET = E.transpose(1, 2)
    s, t_ = K.new_empty(B, N), K.new_empty(B, M)
    pos_a, pos_b = a > 0, b > 0

    def log_iteration() -> Tensor:
        nonlocal F, G
        torch.add(K, (G + logb).unsqueeze(1), out=E)
        F_new = -_lse_(E, 2)
        err = (a * (torch.exp(F - F_new) - 1)).norm(dim=1)  # row-marginal error of the entering state
        F = F_new
        torch.add(K, (F + loga).unsqueeze(2), out=E)
        G = -_lse_(E, 1)
        return err

    err = log_iteration()  # from F = G = 0, exp(K) may underflow entirely at small eps: start in log domain
    it, n_scaling, n_log, converged = 1, 0, 1, False
    while it < max_iter and not converged:
        n = min(block, max_iter - it)
        torch.add(K, F.unsqueeze(2), out=E)
        E.add_(G.unsqueeze(1)).clamp_min_(_EXP_FLOOR).exp_()
        u, v = torch.ones_like(F), torch.ones_like(G)
        done = n
        for t in range(n):
            _bmv(E, b * v, s)
            if t == 0:
                err = (a * (s - 1)).norm(dim=1)  # row error of the state entering the block
                if tol is not None and bool((err <= tol).all()):
                    converged, done = True, 0
                    break
            u = 1 / s
            au = torch.where(pos_a, a * u, 0)  # zero-weight rows must not turn 0 * inf into NaN
            v = 1 / _bmv(ET, au, t_)
        # Zero-weight tokens do not move the plan; their potentials are refreshed at the end.
        lu = torch.where(pos_a, u.log(), 0)
        lv = torch.where(pos_b, v.log(), 0)
        if bool((lu.abs().amax() < max_log_scale) & (lv.abs().amax() < max_log_scale)):  # False on NaN
            F, G = F + lu, G + lv
            it += done
            n_scaling += 1
            continue
        n_log += 1
        for t in range(n):  # unsafe scalings: redo this block with exact log-domain updates
            e = log_iteration()
            it += 1
            if t == 0:
                err = e
                if tol is not None and bool((err <= tol).all()):
                    converged = True
                    break
    if not bool(pos_a.all() and pos_b.all()):
        # Dual potentials of zero-weight tokens = their c-transforms (used by the gradient w.r.t. a, b).
        torch.add(K, (G + logb).unsqueeze(1), out=E)
        F = torch.where(pos_a, F, -_lse_(E, 2))
        torch.add(K, (F + loga).unsqueeze(2), out=E)
        G = torch.where(pos_b, G, -_lse_(E, 1))
    # Plan of the final state and its row-marginal error (columns are exact up to rounding).
    torch.add(K, (F + loga).unsqueeze(2), out=E)
    E.add_((G + logb).unsqueeze(1)).exp_()
    err = (E.sum(2) - a).norm(dim=1)
    info = {"n_iter": it, "err": err, "scaling_blocks": n_scaling, "log_blocks": n_log}
    return E, F, G, info


@torch.no_grad()
def _symmetric_potentials(
    K: Tensor, a: Tensor, *, tol: float | None, max_iter: int
) -> tuple[Tensor, Tensor, dict]:
    """Self-transport OT_eps(x, x) (symmetric K, same weights): one potential F with the averaged
    update F <- (F + T(F)) / 2 (Feydy et al. 2019), which converges in a few dozen iterations where
    alternating Sinkhorn can crawl. Stops on tol or when F stops moving (float precision floor).
    Returns (P, F, info) with P = a_i exp(K_ij + F_i + F_j) a_j."""
    loga = a.log()
    F = torch.zeros_like(a)
    E = torch.empty_like(K)
    floor = 8 * torch.finfo(K.dtype).eps
    it = 0
    while it < max_iter:
        it += 1
        torch.add(K, (F + loga).unsqueeze(1), out=E)
        T = -_lse_(E, 2)
        err = (a * (torch.exp(F - T) - 1)).norm(dim=1)
        step = (T - F) / 2
        if (tol is not None and bool((err <= tol).all())) or bool(
            (torch.where(a > 0, step, 0).abs().amax(1) <= floor * (1 + F.abs().amax(1))).all()
        ):
            break
        F = F + step
    torch.add(K, (F + loga).unsqueeze(1), out=E)
    E.add_((F + loga).unsqueeze(2)).exp_()
    return E, F, {"n_iter": it, "err": (E.sum(2) - a).norm(dim=1)}


def _eps_scale(C: Tensor, mask2: Tensor, how: str | None) -> Tensor:
    B = C.shape[0]
    if how is None or how == "none":
        return C.new_ones(B)
    m = mask2.to(C.dtype)
    n = m.sum((1, 2))
    if how == "mean":
        s = (C * m).sum((1, 2)) / n
    elif how == "max":
        s = C.masked_fill(~mask2, -math.inf).amax((1, 2))
    elif how == "std":
        mu = (C * m).sum((1, 2)) / n
        s = (((C - mu.view(-1, 1, 1)) ** 2) * m).sum((1, 2)).div(n).sqrt()
    else:
        raise ValueError(f"eps_scale must be 'mean', 'max', 'std' or None, got {how!r}")
    return torch.where(s > 0, s, torch.ones_like(s))  # all-equal costs: any eps is exact


def _sinkhorn_one(
    x: Tensor,
    y: Tensor,
    *,
    x_mask: Tensor,
    y_mask: Tensor,
    a: Tensor,
    b: Tensor,
    wdtype: torch.dtype,
    eps: float | Tensor,
    eps_scale: str | None,
    tol: float | None,
    max_iter: int,
    value: str,
    block: int,
    symmetric: bool = False,
) -> _Solution:
    """Solve one batch of Sinkhorn problems (no gradient); ``symmetric`` for self-transport OT_eps(x, x)."""
    with torch.no_grad():
        xw, yw, shift = _prepare(x, y, x_mask, y_mask, wdtype)
        C = _cost(xw, yw, shift, x_mask, y_mask)
        mask2 = x_mask.unsqueeze(-1) & y_mask.unsqueeze(-2)
        eps_abs = eps if isinstance(eps, Tensor) else eps * _eps_scale(C, mask2, eps_scale)
        K = C.mul_(-1 / eps_abs.view(-1, 1, 1))  # C's buffer becomes K = -C/eps
        a_d, b_d = a.detach(), b.detach()
        if symmetric:
            P, F, info = _symmetric_potentials(K, a_d, tol=tol, max_iter=max_iter)
            G = F
        else:
            P, F, G, info = _sinkhorn_potentials(K, a_d, b_d, tol=tol, max_iter=max_iter, block=block)
        if value == "entropic":
            # <P, C> + eps KL(P | a b) = eps (<r, F> + <c, G>) since log P - log ab = K + F + G
            r, c = P.sum(2), P.sum(1)
            val = eps_abs * (
                (r * torch.where(a_d > 0, F, 0)).sum(1) + (c * torch.where(b_d > 0, G, 0)).sum(1)
            )
        else:  # <P, C> = -eps <P, K>: one batched dot product, no (B, N, M) temporary
            val = -eps_abs * torch.bmm(P.view(P.shape[0], 1, -1), K.view(K.shape[0], -1, 1)).view(-1)
        f, g = eps_abs.view(-1, 1) * F, eps_abs.view(-1, 1) * G
        del K, C
    return _Solution(val, P, f, g, shift, xw, yw, eps_abs, info)


def sinkhorn(
    x: Tensor,
    y: Tensor,
    *,
    x_mask: Tensor | None = None,
    y_mask: Tensor | None = None,
    a: Tensor | None = None,
    b: Tensor | None = None,
    eps: float = 0.05,
    eps_scale: Literal["mean", "max", "std"] | None = "mean",
    n_iter: int | None = None,
    tol: float = 1e-5,
    max_iter: int = 1000,
    debiased: bool = False,
    value: Literal["transport", "entropic"] = "transport",
    reduction: str = "mean",
    block: int = 10,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, dict]:
    """Entropic OT between token sets, batched, log-stabilised; returns the transport cost <P, C>.

    Solves min_P <P, C> + eps_abs KL(P | a b^T) with C_ij = |x_i - y_j|^2, the same problem as POT's
    ``ot.sinkhorn(a, b, C, reg=eps_abs, method="sinkhorn_log")``, for the whole batch at once.

    Args:
        x: (B, N, D) or (N, D) source tokens. y: (B, M, D) or (M, D) target tokens.
        a, b: weights (N,)/(B, N), (M,)/(B, M), summing to 1; uniform over valid tokens if None.
        eps: regularisation, relative to the per-sample cost scale (see ``eps_scale``).
        eps_scale: "mean" (default), "max" or "std" of each sample's valid costs (no gradient), or None
            for an absolute eps.
        n_iter: run exactly this many iterations (ignores tol); otherwise stop when the L2 norm of the
            row-marginal violation (POT's criterion) is <= tol for every sample (checked every ``block``
            iterations) or after max_iter.
        debiased: return the Sinkhorn divergence OT(x, y) - (OT(x, x) + OT(y, y)) / 2 (same eps_abs).
        value: "transport" -> <P, C>; "entropic" -> <P, C> + eps_abs KL(P | a b^T) (the dual value,
            whose gradient is exactly the envelope gradient returned).
        reduction: "mean", "sum" or "none" ((B,) per-sample values).
        return_info: also return {"n_iter", "err", "eps", ...} (iterations, final row errors, eps_abs).

    Gradients are envelope gradients (no backprop through iterations): dC = P, da = f - mean f,
    db = g - mean g. Computation is fp32 (fp64 for fp64 inputs) with autocast disabled, so bf16
    autocast does not degrade the solver. Peak extra memory is two (B, N, M) buffers.
    """
    if value not in ("transport", "entropic"):
        raise ValueError(f"value must be 'transport' or 'entropic', got {value!r}")
    if not (isinstance(eps, int | float) and eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite float, got {eps!r}")
    if n_iter is not None and n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    x, y, x_mask, y_mask, unbatched, wdtype, a_w, b_w = _checked_inputs(x, y, a, b, x_mask, y_mask)
    tol_ = None if n_iter is not None else tol
    iters = n_iter if n_iter is not None else max_iter

    with torch.autocast(x.device.type, enabled=False):
        solve = {"wdtype": wdtype, "tol": tol_, "max_iter": iters, "value": value, "block": block}
        sol = _sinkhorn_one(
            x, y, x_mask=x_mask, y_mask=y_mask, a=a_w, b=b_w, eps=eps, eps_scale=eps_scale, **solve
        )
        out = _attach(sol, x=x, y=y, a=a_w, b=b_w, x_mask=x_mask, y_mask=y_mask)
        if debiased:
            for z, zm, w in ((x, x_mask, a_w), (y, y_mask, b_w)):
                self_sol = _sinkhorn_one(
                    z, z, x_mask=zm, y_mask=zm, a=w, b=w, eps=sol.eps, eps_scale=None, symmetric=True, **solve
                )
                out = out - 0.5 * _attach(self_sol, x=z, y=z, a=w, b=w, x_mask=zm, y_mask=zm)
    info = sol.info
    if n_iter is None and bool((info["err"] > 10 * tol).any()):
        warnings.warn(
            f"sinkhorn did not converge in {max_iter} iterations (max L2 row-marginal error "
            f"{info['err'].max().item():.2e} > tol {tol:g}); raise max_iter or eps",
            stacklevel=2,
        )
    res = reduce(out, reduction, unbatched)
    if return_info:
        return res, {**info, "eps": sol.eps}
    return res
