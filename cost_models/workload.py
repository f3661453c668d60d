"""The work of one MAST/QMIX training iteration (and of acting) as a kernel graph.

:func:`training_graph` turns a list of :class:`~mast.sparsity.layer.SparseLayer` records
into a ``networkx.DiGraph`` whose nodes carry a :class:`~cost_models.kernels.Kernel` and
whose edges are data dependencies. Structure is read from the records only: ``role``
splits the agent network from the mixer/hypernetworks, ``inputs`` gives the dataflow
within one time step, ``recurrent`` marks the GRU hidden-to-hidden matrix, and
``uses_per_sample`` gives the columns per sample (``n_agents`` for agent layers).

Batching (what one node is): a non-recurrent layer's kernels at all time steps and all
batch elements are independent and form one node with ``M = B * T * uses_per_sample``
(the cost model cuts it into ops that fit the activation SRAM). The recurrent matrix
runs once per time step (``M = B * n_agents``) and chains over ``t`` through the GRU
cell's elementwise node; its input gradients chain backwards over ``t``. Weight
gradients need all time steps' inputs and are one SDDMM node per layer.

One iteration, in dependency order: replay batch DMA (states, actions, rewards; the
agent observations stream from DRAM with the agent input layers' forward nodes of the
online and of the target pass, overlapping their compute); online and target agent forwards
over ``T = seq_len`` steps; online and target mixers over ``T - 1`` steps; the mixing and
the loss (Soft Mellowmax targets, TD(lambda)) on the vector unit; the backward pass
(input gradient and masked weight gradient per layer; no input gradient for layers fed
by observations or state); the dense gradient plus top-k of a topology update, carried
as ``1 / update_interval_iters`` of its work per iteration (``Kernel.weight``); the
global-norm gradient clip; the optimizer over the non-zeros. Target-network weight copies
are not costed.

Memory: everything is on chip when it fits. Forward activations kept for the backward
pass that exceed the activation SRAM spill: the overflowing fraction of every saved
output is written to DRAM by its forward node and read back by its backward node. When
the compressed weights (online CSR, online CSC for ``W^T``, target CSR) plus the
optimizer state exceed the weight SRAM, every matrix node loads its layer's stream from
DRAM and the optimizer's words per non-zero go to DRAM. Replay samples always come from
DRAM.

Elementwise work counted on the vector unit (operations per element, documented model
constants): GRU cell :data:`GRU_OPS` per hidden unit forward, twice that backward;
mixing :data:`MIX_OPS` per generated mixing weight; loss ``LOSS_OPS_PER_ACTION`` per
agent action plus :data:`LOSS_OPS` per sample; top-k :data:`TOPK_OPS` per dense element;
gradient clipping 2 per non-zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from cost_models.kernels import Kernel
from hw.compiler.stack import ActingOp, acting_groups, acting_ops, stack_layers
from hw.profiles import HwProfile
from hw.timing import stream_length
from mast.errors import UserError
from mast.sparsity.layer import SparseLayer

__all__ = [
    "WorkloadConfig",
    "training_graph",
    "inference_graph",
    "resident_tile_words",
    "GRU_OPS",
    "MIX_OPS",
]

GRU_OPS = 12
"""Forward ops per hidden unit: 3 gate sums, 2 sigmoids, tanh, r*h_n, add, (1-z), 2 mul, add."""
GRU_SAVED = 4
"""Words per hidden unit a GRU cell keeps for the backward pass (r, z, n, h_n)."""
MIX_OPS = 3
"""Ops per generated mixing weight per sample (abs, multiply, accumulate / ELU)."""
LOSS_OPS_PER_ACTION = 6
"""Soft Mellowmax and action gather per agent action (scale, exp, mul, two sums, compare)."""
LOSS_OPS = 8
"""Per-sample TD(lambda) recursion, TD error, square and reduction."""
TOPK_OPS = 4
"""Radix-select top-k per element: histogram pass, threshold compare, drop/grow write."""


@dataclass(frozen=True)
class WorkloadConfig:
    """The training-run settings the workload depends on."""

    batch_size: int = 32
    """Episodes per training batch ``B``."""
    episode_limit: int = 60
    """Maximum episode length; the default sequence length is ``episode_limit + 1``."""
    seq_len: int | None = None
    """Time steps ``T`` per batch element (``None``: ``episode_limit + 1``)."""
    avg_episode_len: float | None = None
    """Average env steps per collected episode (``None``: ``episode_limit``, worst case)."""
    episodes_per_iteration: int = 1
    """Episodes collected per training iteration (PyMARL: ``batch_size_run``)."""
    update_interval_iters: int = 200
    """Training iterations between topology updates (paper: 200 episodes). Training's
    ``sparsity.delta_t`` counts environment steps; :func:`cost_models.rundir.workload_config`
    converts."""
    t_max: int = 2_000_000
    """Environment steps of the whole run."""
    optimizer_ops_per_nnz: float = 12.0
    """RMSprop update arithmetic per non-zero (10-15 for Adam/RMSprop with clipping)."""
    optimizer_words_per_nnz: float = 7.0
    """Words read and written per non-zero by the optimizer (~7: weight, gradient, state)."""
    topology_updates: bool = True
    """Dynamic sparse training: amortised dense gradient + top-k (``False``: a static or
    dense network, no regrowth work)."""

    def __post_init__(self) -> None:
        for k in (
            "batch_size",
            "episode_limit",
            "episodes_per_iteration",
            "update_interval_iters",
            "t_max",
        ):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UserError(f"run config {k} must be a positive integer, got {v!r}")
        if self.seq_len is not None and (not isinstance(self.seq_len, int) or self.seq_len < 2):
            raise UserError(f"run config seq_len must be an integer >= 2, got {self.seq_len!r}")
        if self.avg_episode_len is not None and not self.avg_episode_len > 0:
            raise UserError(f"run config avg_episode_len must be > 0, got {self.avg_episode_len!r}")

    @property
    def steps(self) -> int:
        """Sequence length ``T`` of a batch element."""
        return self.seq_len if self.seq_len is not None else self.episode_limit + 1

    @property
    def env_steps_per_iteration(self) -> float:
        """``episodes_per_iteration * avg_episode_len``: env steps between two iterations."""
        avg = self.avg_episode_len if self.avg_episode_len is not None else self.episode_limit
        return self.episodes_per_iteration * float(avg)

    @property
    def iterations(self) -> float:
        """Training iterations of the whole run: ``t_max / env_steps_per_iteration``."""
        return self.t_max / self.env_steps_per_iteration


class _Net:
    """Layer bookkeeping shared by the graph builders."""

    def __init__(self, layers: Sequence[SparseLayer]):
        if not layers:
            raise UserError("the network has no layers")
        self.by_name = {lay.name: lay for lay in layers}
        for lay in layers:
            for i in lay.inputs:
                if i not in self.by_name:
                    raise UserError(f"layer {lay.name!r} reads unknown layer {i!r}")
        self.agent = [lay for lay in layers if lay.role == "agent"]
        self.mixer = [lay for lay in layers if lay.role != "agent"]
        if not self.agent:
            raise UserError("the network has no agent layers")
        consumers: dict[str, list[str]] = {lay.name: [] for lay in layers}
        for lay in layers:
            for i in lay.inputs:
                consumers[i].append(lay.name)
        self.consumers = consumers
        self.cells: list[Cell] = []
        recs = [lay for lay in layers if lay.recurrent]
        for i, rec in enumerate(recs):
            users = [lay for lay in layers if rec.name in lay.inputs]
            members = users[0].inputs if users else (rec.name,)
            label = "cell" if len(recs) == 1 else f"cell[{i}]"
            self.cells.append(Cell(label, rec, tuple(self.by_name[m] for m in members)))
        self.cell_of = {m.name: c for c in self.cells for m in c.members}
        firsts = [lay for lay in self.agent if not lay.inputs and not lay.recurrent]
        acting = [lay for lay in firsts if lay.uses_per_env_step > 0] or firsts
        self.n_agents = sum(lay.uses_per_sample for lay in acting) or 1
        self.agent_in_words = sum(lay.n_in * lay.uses_per_sample for lay in acting)
        outs = self.outputs(self.agent)
        self.actions = sum(lay.n_out * lay.uses_per_sample for lay in outs) / self.n_agents

    def outputs(self, group: list[SparseLayer]) -> list[SparseLayer]:
        return [lay for lay in group if not self.consumers[lay.name]]


@dataclass(frozen=True, eq=False)
class Cell:
    """A recurrent cell: the recurrent matrix and every matrix whose output it joins."""

    label: str
    rec: SparseLayer
    members: tuple[SparseLayer, ...]

    @property
    def hidden(self) -> int:
        return self.rec.n_in

    @property
    def inputs(self) -> tuple[SparseLayer, ...]:
        """The non-recurrent members (computed before the unroll, batched over steps)."""
        return tuple(m for m in self.members if not m.recurrent)


def _fp(p: HwProfile, lay: SparseLayer) -> int:
    """Stored stream entries of a layer on ``p`` (dense storage on a systolic array)."""
    return lay.mask.size if p.kind == "systolic" else stream_length(lay.mask.sum(axis=1))


def _units(net: _Net, group: list[SparseLayer]) -> list[str]:
    """Topological order of a group's layers, each recurrent cell as one unit (its label)."""
    unit = {
        lay.name: (net.cell_of[lay.name].label if lay.name in net.cell_of else lay.name)
        for lay in group
    }
    ug = nx.DiGraph()
    ug.add_nodes_from(set(unit.values()))
    for lay in group:
        if lay.recurrent:
            continue
        for i in lay.inputs:
            if i in unit and unit[i] != unit[lay.name]:
                ug.add_edge(unit[i], unit[lay.name])
    try:
        return list(nx.lexicographical_topological_sort(ug))
    except nx.NetworkXUnfeasible:
        raise UserError("the layers' inputs form a cycle outside the recurrent matrix") from None


Blocks = list[tuple[int, int, str]]
"""``(first step, end step, node)`` of the nodes producing a layer's output."""


def _block_steps(p: HwProfile, lay: SparseLayer, per_step: int) -> int:
    """Time steps one node of a non-recurrent layer batches: as many as one op holds."""
    width = max(min(lay.n_in, p.act_buf_words), min(lay.n_out, p.out_buf_words))
    if p.kind == "systolic":
        m_op = p.act_sram_words // width
    else:
        m_op = (p.act_sram_words // p.n_pe) // width * p.n_pe
    return max(1, m_op // max(1, per_step))


def _split(steps: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, steps)) for a in range(0, steps, size)]


def _overlap(blocks: Blocks, a: int, b: int) -> list[str]:
    return [n for (x, y, n) in blocks if x < b and a < y]


class _Builder:
    """Adds the nodes of one pass (a phase) of one network group to the graph."""

    def __init__(self, g, p, net, run_batch, spill, wbytes, resident=False):
        self.g, self.p, self.net = g, p, net
        self.batch, self.spill, self.wbytes = run_batch, spill, wbytes
        self.resident = resident
        self.stream_inputs = False
        """Agent input layers read their observation block from DRAM themselves."""

    def blocks(self, lay: SparseLayer, steps: int, phase: str, single: bool):
        if single:
            return [(0, steps)]
        per_step = self.batch * _uses(lay, phase)
        return _split(steps, _block_steps(self.p, lay, per_step))

    def forward(self, group, phase: str, steps: int, single: bool) -> dict[str, Blocks]:
        """Forward nodes over ``steps`` time steps; returns each layer's output blocks."""
        net, out = self.net, {}
        names = {lay.name for lay in group}
        cells = {c.label: c for c in net.cells}

        def deps_of(lay, a, b):
            d = sorted({n for i in lay.inputs if i in names for n in _overlap(out[i], a, b)})
            return d or ["replay"]

        def matrix(lay):
            blocks = []
            for a, b in self.blocks(lay, steps, phase, single):
                m = self.batch * (b - a) * _uses(lay, phase)
                relu = bool(net.consumers[lay.name]) and lay.name not in net.cell_of
                saved = m * lay.n_out if phase == "fwd" else 0
                dram = _spill(self.spill, "activations", saved, self.wbytes, lay)
                streamed = self.stream_inputs and lay.role == "agent" and not lay.inputs
                if streamed:
                    dram += (("replay", float(m * lay.n_in * self.spill[1])),)
                kern = Kernel(
                    f"{phase}:{lay.name}:{a}",
                    phase,
                    "spmm",
                    m,
                    lay.name,
                    t=a,
                    mask=lay.mask,
                    relu=relu,
                    dram=dram,
                    resident=self.resident,
                )
                deps = [] if streamed else deps_of(lay, a, b)
                blocks.append((a, b, _add(self.g, kern, deps)))
            out[lay.name] = blocks

        for u in _units(net, group):
            if u not in cells:
                matrix(net.by_name[u])
                continue
            cell = cells[u]
            for mbr in cell.inputs:
                matrix(mbr)
            nodes = self.recurrence(cell, phase, steps, [out[mb.name] for mb in cell.inputs])
            for mbr in cell.members:
                out[mbr.name] = nodes
        return out

    def recurrence(self, cell: Cell, phase: str, steps: int, member_blocks: list[Blocks]) -> Blocks:
        """The GRU unroll ``rec(t) -> cell(t) -> rec(t+1)``; returns the cell nodes."""
        rec, h = cell.rec, cell.hidden
        m = self.batch * _uses(rec, phase)
        prev, cells = None, []
        for t in range(steps):
            kern = Kernel(
                f"{phase}:{rec.name}:{t}",
                phase,
                "spmm",
                m,
                rec.name,
                t=t,
                mask=rec.mask,
                dram=_spill(self.spill, "activations", 0, self.wbytes, rec),
                resident=self.resident,
            )
            first = [] if self.stream_inputs else ["replay"]  # h_0 = 0 needs no input
            r = _add(self.g, kern, [prev] if prev else first)
            save = GRU_SAVED * m * h if phase == "fwd" else 0
            deps = [r] + [n for blocks in member_blocks for n in _overlap(blocks, t, t + 1)]
            prev = _add(
                self.g,
                Kernel(
                    f"{phase}:{cell.label}:{t}",
                    phase,
                    "vector",
                    m * h,
                    "",
                    t=t,
                    label=cell.label,
                    ops_per_elem=GRU_OPS,
                    words_per_elem=8.0,
                    dram=_spill(self.spill, "activations", save, 0, None),
                ),
                deps,
            )
            cells.append((t, t + 1, prev))
        return cells


def _uses(lay: SparseLayer, phase: str) -> int:
    return lay.uses_per_env_step if phase == "infer" else lay.uses_per_sample


def _spill(spill, operand, words, wbytes, lay) -> tuple[tuple[str, float], ...]:
    """DRAM traffic of a node: its spilled share of ``words`` plus its weight stream."""
    ratio, ob = spill
    items = []
    if ratio and words:
        items.append((operand, ratio * words * ob))
    if wbytes and lay is not None:
        items.append(("weights", float(wbytes[lay.name])))
    return tuple(items)


def _add(g: nx.DiGraph, kern: Kernel, deps: list[str]) -> str:
    g.add_node(kern.name, kernel=kern)
    for d in deps:
        g.add_edge(d, kern.name)
    return kern.name


def _memory(p: HwProfile, net: _Net, run: WorkloadConfig, layers) -> tuple[tuple, dict]:
    """Activation spill ratio and per-layer weight DRAM bytes (see module docstring)."""
    ob = p.operand_bytes
    n_seq = run.batch_size * run.steps
    saved = sum(n_seq * lay.uses_per_sample * lay.n_out for lay in layers)
    saved += sum(GRU_SAVED * n_seq * c.rec.uses_per_sample * c.hidden for c in net.cells)
    act_words = p.act_sram_words
    ratio = max(0.0, 1.0 - act_words / saved) if saved else 0.0
    copies = 2 if p.kind == "systolic" else 3
    footprint = sum(copies * _fp(p, lay) for lay in layers)
    footprint += sum(lay.nnz for lay in layers) * p.acc_bytes / ob
    wbytes = {}
    if footprint > p.weight_sram_words:
        idx = 0 if p.kind == "systolic" else p.index_bits / 8
        wbytes = {lay.name: _fp(p, lay) * (ob + idx) for lay in layers}
    return (ratio, ob), wbytes


def training_graph(p: HwProfile, layers: Sequence[SparseLayer], run: WorkloadConfig) -> nx.DiGraph:
    """The kernel graph of one training iteration of ``layers`` on profile ``p``."""
    from cost_models.backward import add_backward

    net = _Net(layers)
    spill, wbytes = _memory(p, net, run, layers)
    ob = p.operand_bytes
    g = nx.DiGraph()
    n_t, batch = run.steps, run.batch_size
    state_in = max((lay.n_in for lay in net.mixer if not lay.inputs), default=0)
    # states, actions, rewards, flags; the observations stream with the agent input layers
    replay_words = batch * n_t * (2 * net.n_agents + state_in + 3)
    _add(g, Kernel("replay", "replay", "dma", 0, dram=(("replay", float(replay_words * ob)),)), [])

    b = _Builder(g, p, net, batch, spill, wbytes)
    b.stream_inputs = True
    fwd = {}
    for phase in ("fwd", "target_fwd"):
        b.spill = spill if phase == "fwd" else (0.0, ob)
        fwd[phase] = (
            b.forward(net.agent, phase, n_t, False),
            b.forward(net.mixer, phase, n_t - 1, True),
        )
    b.spill = spill
    add_backward(g, b, run, fwd)
    return g


def inference_graph(p: HwProfile, layers: Sequence[SparseLayer]) -> nx.DiGraph:
    """The kernels of one environment step of acting: every agent's forward, ``M = n_agents``.

    The hidden state from the previous step is on chip; the observations arrive by DMA.
    On a systolic profile the acting ops whose tiles fit the weight SRAM run with resident
    weights (``Kernel.resident``, all of them when :func:`resident_tile_words` fit): the
    cells keep their tiles across acting steps, as the sparse array's row-parallel banks
    keep theirs; neither reloads them per step.
    """
    net = _Net(layers)
    ob = p.operand_bytes
    acting = [lay for lay in net.agent if lay.uses_per_env_step > 0]
    if not acting:
        raise UserError("no agent layer runs when acting (uses_per_env_step is 0 for all)")
    footprint = sum(_fp(p, lay) for lay in acting)
    wbytes = {}
    if footprint > p.weight_sram_words:
        idx = 0 if p.kind == "systolic" else p.index_bits / 8
        wbytes = {lay.name: _fp(p, lay) * (ob + idx) for lay in acting}
    g = nx.DiGraph()
    _add(
        g,
        Kernel("replay", "infer", "dma", 0, dram=(("replay", float(net.agent_in_words * ob)),)),
        [],
    )

    _Builder(g, p, net, 1, (0.0, ob), wbytes, False).forward(acting, "infer", 1, True)
    for group in acting_groups(acting):
        if len(group) > 1:
            _stack_nodes(g, group)
    for act in acting_ops(acting, p):
        if len(act.blocks) > 1:
            _merge_nodes(g, act)
    if p.kind == "systolic":
        _keep_resident(g, p)
    return g


def _keep_resident(g: nx.DiGraph, p: HwProfile) -> None:
    """Mark the acting kernels whose tiles stay in the cells' banks (``Kernel.resident``).

    All of them when their tiles fit the weight SRAM together; otherwise, as a
    weight-stationary design would, as many as fit, taken by the cycles residency saves per
    tile word (most first); the others reload their tiles every step.
    """
    from hw.timing import systolic_cycles, systolic_resident_cycles

    mats = [(n, k) for n, k in g.nodes(data="kernel") if k.op == "spmm"]
    r, c = p.rows, p.cols

    def words(k: Kernel) -> int:
        n, kk = k.mask.shape
        return -(-kk // r) * -(-n // c) * r * c

    def saved(k: Kernel) -> int:
        n, kk = k.mask.shape
        return systolic_cycles(kk, n, k.m, p) - systolic_resident_cycles(kk, n, k.m, p)

    order = sorted(mats, key=lambda nk: (-saved(nk[1]) / words(nk[1]), nk[0]))
    free = p.weight_sram_words
    for n, k in order:
        if words(k) <= free:
            free -= words(k)
            g.nodes[n]["kernel"] = dataclasses.replace(k, resident=True)


def _merge_nodes(g: nx.DiGraph, act: ActingOp) -> None:
    """Replace the acting kernels of ``act``'s blocks (one per unit type) by the merged
    op's kernel: the block-diagonal matrix on one sample (:mod:`hw.compiler.stack`)."""
    names = {b.name for b in act.blocks}
    nodes = [n for n, k in g.nodes(data="kernel") if k.layer in names]
    if len(nodes) != len(act.blocks):
        raise AssertionError(f"acting kernels of {sorted(names)}: {nodes}")
    _fuse(g, nodes, act.name, act.mask, 1, nodes)


def _stack_nodes(g: nx.DiGraph, group: list[SparseLayer]) -> None:
    """Replace the acting kernels of ``group`` (consumers of a cell, then its recurrent
    layer) by one kernel of their stacked matrix (:mod:`hw.compiler.stack`).

    The stack runs where the consumers ran, after the cell: the recurrent product it
    computes is the next step's, so the cell no longer waits for one in this step.
    """
    nodes = [n for lay in group for n, k in g.nodes(data="kernel") if k.layer == lay.name]
    if len(nodes) != len(group):
        raise AssertionError(f"acting kernels of {[lay.name for lay in group]}: {nodes}")
    stack = stack_layers(group)
    _fuse(g, nodes, stack.name, stack.mask, g.nodes[nodes[0]]["kernel"].m, nodes[:-1])


def _fuse(g: nx.DiGraph, nodes: list[str], layer: str, mask, m: int, wired: list[str]) -> None:
    """Replace the kernels ``nodes`` by one kernel of ``layer`` (``mask`` on ``m``
    samples, their DRAM traffic together), taking the edges of the nodes in ``wired``."""
    kerns = [g.nodes[n]["kernel"] for n in nodes]
    fused = dataclasses.replace(
        kerns[0],
        name=f"infer:{layer}:0",
        layer=layer,
        mask=mask,
        m=m,
        relu=False,
        dram=tuple(item for k in kerns for item in k.dram),
    )
    preds = {d for n in wired for d in g.predecessors(n)} - set(nodes)
    succs = {d for n in wired for d in g.successors(n)} - set(nodes)
    g.remove_nodes_from(nodes)
    _add(g, fused, sorted(preds))
    for d in sorted(succs):
        g.add_edge(fused.name, d)


def resident_tile_words(p: HwProfile, layers: Sequence[SparseLayer]) -> int:
    """Weight-tile words of ``layers``' forward ops on systolic profile ``p`` (zero padded
    to whole ``rows x cols`` tiles), the words the cells' banks hold when resident."""
    r, c = p.rows, p.cols
    return sum(-(-lay.n_in // r) * -(-lay.n_out // c) * r * c for lay in layers)
