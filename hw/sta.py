"""Every timing endpoint of a routed design, from nextpnr's SDF back-annotation.

nextpnr's ``--report`` names one critical path per clock. To see everything between a
route and its target clock, :func:`read_sdf` reads the ``--sdf`` file nextpnr writes
(the routed cell and interconnect delays, and each register's or block RAM's setup
check) into a timing graph, :func:`endpoint_timing` propagates arrival times from every
clocked output and names the clocked output each endpoint's worst path starts from
(:func:`endpoint_arrivals`: the arrivals alone), and :func:`failing_groups` gathers the
endpoints slower than the target period by register (a bus's bits together). The worst
arrival equals the delay of nextpnr's own critical path (``tests/test_pnr.py``).

Only paths that start at a clocked output are timed, as nextpnr does for a single clock;
paths from unconstrained I/O pads are not.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "CLOCK_PINS",
    "EndpointGroup",
    "TimingGraph",
    "endpoint_arrivals",
    "endpoint_timing",
    "failing_groups",
    "read_sdf",
]

CLOCK_PINS = frozenset({"CLK", "CLKA", "CLKB", "WCK", "CLKI", "RCLK", "WCLK"})
"""Cell pins whose ``IOPATH`` to an output is a clock-to-output delay (registers, block
RAM and LUT-RAM ports of ECP5 and iCE40), where timing paths start."""

_INSTANCE = re.compile(r"^\s*\(INSTANCE\s*(\S*)\s*\)")
_IOPATH = re.compile(r"^\s*\(IOPATH\s+(\(\w+\s+\S+\)|\S+)\s+(\S+)\s+\(([^)]*)\)\s*\(([^)]*)\)")
_INTERCONNECT = re.compile(r"^\s*\(INTERCONNECT\s+(\S+)\s+(\S+)\s+\(([^)]*)\)\s*\(([^)]*)\)")
_CHECK = re.compile(r"^\s*\((?:SETUPHOLD|SETUP)\s+(\(\w+\s+\S+\)|\S+)\s+\([^)]*\)\s+\(([^)]*)\)")


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def _pin(token: str) -> str:
    """``A`` or ``(posedge A)`` -> ``A``."""
    token = token.strip("()").split()[-1]
    return _unescape(token)


def _ps(triple: str) -> float:
    """The largest of an SDF ``min:typ:max`` triple (picoseconds)."""
    vals = [float(v) for v in triple.split(":") if v.strip()]
    return max(vals) if vals else 0.0


@dataclass
class TimingGraph:
    """Routed delays of a design, in picoseconds."""

    edges: Mapping[str, list[tuple[str, float]]]
    """``cell/pin`` -> the pins it drives (through a cell arc or a net) and the delay."""
    launch: Mapping[str, float]
    """Clocked output pins and their clock-to-output delay."""
    setup: Mapping[str, float]
    """Endpoint pins (a setup check against the clock) and their setup time."""


def read_sdf(lines: Iterable[str]) -> TimingGraph:
    """Read nextpnr's SDF (one delay or check per line, as nextpnr writes it)."""
    edges: dict[str, list[tuple[str, float]]] = defaultdict(list)
    launch: dict[str, float] = {}
    setup: dict[str, float] = {}
    inst = ""
    for line in lines:
        if "(INSTANCE" in line:
            m = _INSTANCE.match(line)
            inst = _unescape(m.group(1)) if m else ""
        elif "(INTERCONNECT" in line:
            m = _INTERCONNECT.match(line)
            if m:
                d = max(_ps(m.group(3)), _ps(m.group(4)))
                edges[_unescape(m.group(1))].append((_unescape(m.group(2)), d))
        elif "(IOPATH" in line:
            m = _IOPATH.match(line)
            if m:
                src, dst = _pin(m.group(1)), _pin(m.group(2))
                d = max(_ps(m.group(3)), _ps(m.group(4)))
                if src in CLOCK_PINS or m.group(1).startswith("("):
                    key = f"{inst}/{dst}"
                    launch[key] = max(d, launch.get(key, 0.0))
                else:
                    edges[f"{inst}/{src}"].append((f"{inst}/{dst}", d))
        elif "(SETUP" in line:
            m = _CHECK.match(line)
            if m:
                key = f"{inst}/{_pin(m.group(1))}"
                setup[key] = max(_ps(m.group(2)), setup.get(key, 0.0))
    return TimingGraph(dict(edges), launch, setup)


def _propagate(graph: TimingGraph) -> tuple[dict[str, float], dict[str, str]]:
    """Worst arrival (ps) at every pin a clocked output reaches, and the clocked output
    that worst path starts from."""
    indeg: dict[str, int] = defaultdict(int)
    for outs in graph.edges.values():
        for v, _ in outs:
            indeg[v] += 1
    arrival: dict[str, float] = dict(graph.launch)
    source: dict[str, str] = {n: n for n in graph.launch}
    nodes = set(graph.edges) | set(indeg) | set(graph.launch)
    queue = deque(n for n in nodes if indeg[n] == 0)
    while queue:
        u = queue.popleft()
        a = arrival.get(u)
        for v, d in graph.edges.get(u, ()):
            if a is not None and v not in graph.launch and a + d > arrival.get(v, -1.0):
                arrival[v] = a + d
                source[v] = source[u]
            indeg[v] -= 1
            if indeg[v] == 0:
                queue.append(v)
    return arrival, source


def endpoint_timing(graph: TimingGraph) -> tuple[dict[str, float], dict[str, str]]:
    """Worst arrival plus setup (ps) at every endpoint a clocked output reaches, and the
    clocked output (``cell/pin``) that worst path starts from."""
    arrival, source = _propagate(graph)
    ends = [n for n in graph.setup if n in arrival]
    return {n: arrival[n] + graph.setup[n] for n in ends}, {n: source[n] for n in ends}


def endpoint_arrivals(graph: TimingGraph) -> dict[str, float]:
    """Worst arrival plus setup (ps) at every endpoint a clocked output reaches."""
    return endpoint_timing(graph)[0]


@dataclass(frozen=True)
class EndpointGroup:
    """Endpoints of one register or memory (its bits and ports together) over a period."""

    name: str
    """The cell name without its bit suffix, and the pin (``ctrl.sp_addr/M``)."""
    count: int
    worst_ns: float
    source: str = ""
    """The clocked output (``cell/pin``) the worst endpoint's path starts from, when known."""


_DIGITS = re.compile(r"\d+$")
_BIT = re.compile(r"(?:_TRELLIS_FF_Q(?:_\d+)?|\$DPRAM_COMB\d|_SB_DFF\w*|\.\d+)+$")


def group_name(endpoint: str) -> str:
    """``array.pe1.out.0.0/DIA12`` -> ``array.pe1.out/DIA#``: bits and ports of one bus."""
    cell, _, pin = endpoint.rpartition("/")
    return f"{_BIT.sub('', cell)}/{_DIGITS.sub('#', pin)}"


def failing_groups(
    arrivals: Mapping[str, float],
    period_ns: float,
    sources: Mapping[str, str] | None = None,
) -> list[EndpointGroup]:
    """Endpoints slower than ``period_ns``, grouped by :func:`group_name`, worst first;
    with ``sources`` (:func:`endpoint_timing`) each group names where its worst path
    starts."""
    groups: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for name, ps in arrivals.items():
        if ps > period_ns * 1000:
            groups[group_name(name)].append((ps / 1000, name))
    out = []
    for g, v in groups.items():
        worst, end = max(v)
        src = (sources or {}).get(end, "")
        out.append(EndpointGroup(g, len(v), round(worst, 3), src))
    return sorted(out, key=lambda g: (-g.worst_ns, g.name))
