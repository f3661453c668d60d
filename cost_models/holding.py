"""Whether a profile *holds* a workload: every op of the MAST QMIX networks of its
``holds_maps`` at ``holds_sparsity`` fits its memories whole, only the samples tiled.

For every weight matrix (``N x K`` with ``nnz`` non-zeros at the sparsity's Erdos-Renyi
allocation, :func:`cost_models.networks.mast_network_layers`) and one tile of ``M =
n_pe`` samples, the ops of training are checked against :func:`hw.fit.fit_limits`:

- forward SpMM ``N x K`` and input-gradient SpMM through ``W^T`` (``K x N``), each with the
  longest stream its mask can have, ``nnz + rows - 1`` (every row but one empty gives a
  token; trained masks move non-zeros between rows, so the random mask's own stream is
  not the bound);
- the masked weight gradient (SDDMM) in chunks of ``grad_buf_words`` non-zeros, and the
  dense gradient of a topology update (all ``N K`` entries in such chunks).

A kernel that does not fit is not an error of the cost model (it tiles rows and inputs
and pays for it), but the profile then does not hold that network: its weight streams or
buffers are too small for the layer.
"""

from __future__ import annotations

from hw.fit import OpShape, fit_limits
from hw.profiles import HwProfile

from .networks import mast_network_layers

__all__ = ["check_holds"]


def _shapes(p: HwProfile, n: int, k: int, nnz: int) -> list[tuple[str, OpShape]]:
    m = p.n_pe
    chunk = min(nnz, p.grad_buf_words)
    dense_chunk = min(n * k, p.grad_buf_words)
    return [
        ("forward", OpShape("spmm", "sample", n, k, m, stream_length=nnz + n - 1)),
        ("input_grad", OpShape("spmm", "sample", k, n, m, stream_length=nnz + k - 1)),
        (
            "weight_grad",
            OpShape("sddmm", "sample", n, k, m, stream_length=chunk + n - 1, chunk_nnz=chunk),
        ),
        (
            "dense_grad",
            OpShape("sddmm", "sample", n, k, m, stream_length=dense_chunk, chunk_nnz=dense_chunk),
        ),
    ]


def check_holds(
    profile: HwProfile, maps: tuple[str, ...] | None = None, sparsity: float | None = None
) -> list[str]:
    """One line per op that does not fit (empty: the profile holds the workload).

    ``maps`` and ``sparsity`` default to the profile's ``holds_maps`` and
    ``holds_sparsity``.
    """
    maps = profile.holds_maps if maps is None else maps
    sparsity = profile.holds_sparsity if sparsity is None else sparsity
    problems = []
    for map_name in maps:
        for lay in mast_network_layers(map_name, sparsity):
            n, k = lay.shape
            for kernel, shape in _shapes(profile, n, k, lay.nnz):
                for lim in fit_limits(profile, shape):
                    if not lim.ok:
                        problems.append(
                            f"{map_name} {lay.name} {kernel}: {lim.what}={lim.value} exceeds "
                            f"{lim.field}={lim.limit}"
                        )
    return problems
