"""Block-RAM floorplan for place and route: each PE's memories side by side.

nextpnr's placer legalises block RAMs into free sites with little regard for the logic
they serve. On the 16-PE array in an LFE5U-85F (156 of 208 DP16KD) it spread every PE's
nine block RAMs over the whole width of the die (PE 0's from column 31 to 116, on three
of the four rows), so each PE's buffers, its banks of the activation, output and weight
SRAMs and the logic between them were joined by wires across the chip, and router2 did
not converge (README, place and route).

:func:`plan` pins them instead (nextpnr's ``BEL`` cell attribute): the block RAMs of PE
``i`` (every memory whose instance path names index ``i``: ``array.pe<i>.*``, the
banks ``array.act<i>`` / ``array.out<i>``, the weight banks ``ctrl.weights.*<i>``) take
consecutive sites of one row, the PEs in ``ceil(P / rows)`` equal bands per row, each
group of four PEs a block of two bands in two rows (:func:`pe_site`); the shared
memories (gradient SRAM, reduction tables) take the free sites of the two rows nearest
the die's middle, nearest its middle column first; within a group the weight SRAM's
banks of the two PEs of a row meet at their bands' common edge. :func:`plan_dsps` pins
each PE's multiplier in the nearest multiplier row, above the middle of its block RAMs.
The placer then puts each PE's logic by its memories and its multiplier.
:func:`write_floorplan` writes a copy of the synthesised netlist with the attributes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

from hw.parts import Part, get_part, part_names
from hw.timing import BANK_GROUP
from mast.errors import UserError

__all__ = [
    "BRAM_CELL",
    "DSP_CELL",
    "bel_name",
    "check_part",
    "cluster",
    "dsp_bel_name",
    "pe_site",
    "plan",
    "plan_dsps",
    "write_floorplan",
]

BRAM_CELL: Mapping[str, str] = {"ecp5": "DP16KD"}
"""The block-RAM cell type per family."""

DSP_CELL: Mapping[str, str] = {"ecp5": "MULT18X18D"}
"""The multiplier cell type per family."""

_INDEXED = re.compile(r"^[A-Za-z_]+?(\d+)$")


def bel_name(part: Part, row: int, col_index: int) -> str:
    """nextpnr's name of block-RAM site ``col_index`` (0-based) in tile row ``row``."""
    return f"X{part.bram_columns[col_index]}/Y{row}/EBR{col_index % 4}"


def dsp_bel_name(part: Part, row: int, col_index: int) -> str:
    """nextpnr's name of multiplier site ``col_index`` (0-based) in tile row ``row``: the
    sites come in groups of four per block of nine columns, at offsets 0, 1, 4 and 5
    (``MULT18_<offset>``)."""
    return f"X{part.dsp_columns[col_index]}/Y{row}/MULT18_{(0, 1, 4, 5)[col_index % 4]}"


def cluster(cell: str) -> int | None:
    """The PE index a memory cell belongs to: the number ending the first component of
    its instance path that ends in one (``array.pe3.act.0.0`` -> 3, ``array.out12.0.0`` ->
    12, ``ctrl.weights.weight_col3.0.0`` -> 3), or ``None`` for a shared memory."""
    for part in cell.split("."):
        m = _INDEXED.match(part)
        if m:
            return int(m.group(1))
    return None


def check_part(part: Part) -> None:
    """Raise the one-line error for a part without a block-RAM site map."""
    if not part.bram_rows or part.family not in BRAM_CELL:
        known = [n for n in part_names(routable=True) if get_part(n).bram_rows]
        raise UserError(
            f"--floorplan: no block-RAM site map for part {part.name!r}; parts with one: "
            f"{', '.join(known)}"
        )


def _paired(n_rows: int, per_row: int) -> bool:
    """Whether the groups of :data:`hw.timing.BANK_GROUP` PEs take blocks of two bands in
    two rows (:func:`pe_site`)."""
    half = BANK_GROUP // 2
    return not (BANK_GROUP % 2 or n_rows % 2 or per_row % half)


def pe_site(i: int, n_rows: int, per_row: int) -> tuple[int, int]:
    """(row index, band in the row) of PE ``i`` with ``per_row`` bands a row.

    The PEs of a group of :data:`hw.timing.BANK_GROUP` (which share their control
    registers and the bank trees' first level, ``hw.rtl.banks``) take a block of two
    bands in each of two rows where the rows and bands pair up (16 PEs on four rows of
    four bands: a quarter of the die each), so a group's registers reach its PEs across
    half the die's width instead of all of it; otherwise the PEs fill the rows in order."""
    half = BANK_GROUP // 2
    if not _paired(n_rows, per_row):
        return i // per_row, i % per_row
    g, j = divmod(i, BANK_GROUP)
    pair, column = divmod(g, per_row // half)
    return 2 * pair + j // half, column * half + j % half


def plan(cells: list[str], part: Part, n_pe: int) -> dict[str, str]:
    """``{cell: BEL}`` for the block-RAM ``cells`` of an ``n_pe``-PE design (module doc)."""
    check_part(part)
    rows, n_col = part.bram_rows, len(part.bram_columns)
    if len(cells) > len(rows) * n_col:
        raise UserError(
            f"--floorplan: {len(cells)} block RAMs do not fit the {len(rows) * n_col} sites "
            f"of {part.name}"
        )
    groups: dict[int, list[str]] = {}
    shared = []
    for c in sorted(cells):
        i = cluster(c)
        if i is not None and i < n_pe:
            groups.setdefault(i, []).append(c)
        else:
            shared.append(c)
    per_row = math.ceil(n_pe / len(rows))
    band = n_col // per_row
    widest = max((len(g) for g in groups.values()), default=0)
    if widest > band:
        raise UserError(
            f"--floorplan: a PE's {widest} block RAMs exceed its band of {band} sites in a "
            f"row of {part.name} ({per_row} PEs a row)"
        )
    out: dict[str, str] = {}
    used: set[tuple[int, int]] = set()
    paired = _paired(len(rows), per_row)
    for i, members in sorted(groups.items()):
        row_index, slot = pe_site(i, len(rows), per_row)
        row = rows[row_index]
        first = slot * band + (band - len(members)) // 2
        if paired:
            # the weight SRAM's banks (``ctrl.*``, sorted last) of the two PEs of a row in a
            # group meet at the bands' common edge: the left band's PE ends there, the
            # right band's starts there in reverse order, so each group's stream tree
            # gathers its banks from two short runs of sites instead of four bands
            if slot % 2 == 0:
                first = slot * band + band - len(members)
            else:
                first, members = slot * band, members[::-1]
        for j, c in enumerate(members):
            out[c] = bel_name(part, row, first + j)
            used.add((row, first + j))
    # the free sites of the two rows nearest the die's middle first, by column from the
    # middle column
    mid_row = (rows[0] + rows[-1]) / 2
    mid_col = (part.bram_columns[0] + part.bram_columns[-1]) / 2
    central = sorted(rows, key=lambda r: abs(r - mid_row))[:2]
    free = sorted(
        ((r, k) for r in rows for k in range(n_col) if (r, k) not in used),
        key=lambda s: (s[0] not in central, abs(part.bram_columns[s[1]] - mid_col), s),
    )
    for c, (r, k) in zip(shared, free, strict=False):
        out[c] = bel_name(part, r, k)
    return out


def plan_dsps(cells: list[str], part: Part, n_pe: int, brams: Mapping[str, str]) -> dict[str, str]:
    """``{cell: BEL}`` for the multiplier ``cells`` of the PEs (:func:`cluster`; the others
    stay the placer's): PE ``i``'s in the multiplier row nearest its block RAMs' row
    (ties: the upper one), at the free site nearest the middle of its block RAMs'
    columns (``brams``: :func:`plan`'s pins), so the registers either side of the
    multiplier sit between the PE's memories and it. Empty for a part without a
    multiplier site map."""
    if not part.dsp_rows:
        return {}
    where: dict[int, list[tuple[int, int]]] = {}
    for c, bel in brams.items():
        i = cluster(c)
        if i is not None and i < n_pe:
            x, y, _ = bel.split("/")
            where.setdefault(i, []).append((int(y[1:]), int(x[1:])))
    out: dict[str, str] = {}
    used: set[tuple[int, int]] = set()
    for c in sorted(cells, key=lambda c: (cluster(c) is None, cluster(c) or 0, c)):
        i = cluster(c)
        if i is None or i not in where:
            continue
        row = where[i][0][0]
        mid = sum(x for _, x in where[i]) / len(where[i])
        dsp_row = min(part.dsp_rows, key=lambda r: (abs(r - row), r))
        free = [k for k in range(len(part.dsp_columns)) if (dsp_row, k) not in used]
        if not free:
            continue
        k = min(free, key=lambda k: (abs(part.dsp_columns[k] - mid), k))
        used.add((dsp_row, k))
        out[c] = dsp_bel_name(part, dsp_row, k)
    return out


def write_floorplan(netlist: Path, dst: Path, part: Part, n_pe: int) -> int:
    """Copy the Yosys JSON ``netlist`` to ``dst`` with every block RAM of its top module
    pinned by :func:`plan` and the PEs' multipliers by :func:`plan_dsps`; returns the
    number of pinned block RAMs."""
    check_part(part)
    kind = BRAM_CELL[part.family]
    design = json.loads(Path(netlist).read_text())
    tops = [m for m in design["modules"].values() if m.get("attributes", {}).get("top")] or list(
        design["modules"].values()
    )
    cells = tops[0]["cells"]
    brams = [name for name, c in cells.items() if c["type"] == kind]
    pins = plan(brams, part, n_pe)
    dsps = [name for name, c in cells.items() if c["type"] == DSP_CELL.get(part.family)]
    for name, bel in {**pins, **plan_dsps(dsps, part, n_pe, pins)}.items():
        cells[name].setdefault("attributes", {})["BEL"] = bel
    Path(dst).write_text(json.dumps(design))
    return len(brams)
