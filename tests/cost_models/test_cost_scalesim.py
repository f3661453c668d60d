"""Dense systolic cycles == the weight-stationary closed form == SCALE-Sim's figure.

SCALE-Sim 3.0.0 runs its weight-stationary GEMM simulation (GEMM topology ``M, N, K``:
an ``M x K`` input streamed through a stationary ``K x N`` filter, which is this project's
``W (N x K)`` times ``X (K x M)``) on 4x4 and 8x8 arrays. Observed relation, stall-free
(ample SRAM, computed bandwidth): SCALE-Sim's "Total Cycles" is exactly one less than the
closed form ``ceil(K/R) * ceil(N/C) * (2R + C + M - 2)``: it counts the cycles after the
first weight word enters, the closed form (and ``sim``) the edges up to the one that
samples ``done``.
"""

import csv
from pathlib import Path

import numpy as np
import pytest
from scalesim.scale_sim import scalesim

from cost_models.kernels import Kernel, cost_kernel
from hw.profiles import get_profile

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# (name, M samples, N outputs, K inputs): MAST layer shapes (3m agent fc1 at batch 32 x 3
# agents, 3s5z fc2, 3m hypernet hyper_w1.2 and the V head), sized to keep the run short
GEMMS = [
    ("fc1_3m", 96, 64, 42),
    ("fc2_3s5z", 17, 14, 64),
    ("hyper_w1_3m", 40, 96, 48),
    ("v_head", 33, 1, 32),
]

CONFIG = """[general]
run_name = mast

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 1024
FilterSramSzkB: 1024
OfmapSramSzkB: 1024
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: ws
Bandwidth: 100
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def run_scalesim(tmp: Path, rows: int, cols: int) -> dict[str, tuple[int, int]]:
    """SCALE-Sim's (total, stall) cycles per GEMM name."""
    (tmp / "cfg.cfg").write_text(CONFIG.format(rows=rows, cols=cols))
    (tmp / "topo.csv").write_text(
        "Layer, M, N, K,\n" + "".join(f"{g}, {m}, {n}, {k},\n" for g, m, n, k in GEMMS)
    )
    layout = "Layer," + ",".join(["f"] * 20) + ",\n"
    layout += "".join(f"{g}," + ",".join(["1"] * 20) + ",\n" for g, *_ in GEMMS)
    (tmp / "layout.csv").write_text(layout)
    sim = scalesim(
        save_disk_space=True,
        verbose=False,
        config=str(tmp / "cfg.cfg"),
        topology=str(tmp / "topo.csv"),
        layout=str(tmp / "layout.csv"),
        input_type_gemm=True,
    )
    sim.run_scale(top_path=str(tmp / "out"))
    with open(tmp / "out" / "mast" / "COMPUTE_REPORT.csv") as fh:
        rows_ = [[c.strip() for c in r] for r in csv.reader(fh)]
    head = rows_[0]
    total, stall = head.index("Total Cycles"), head.index("Stall Cycles")
    return {g[0]: (int(r[total]), int(r[stall])) for g, r in zip(GEMMS, rows_[1:], strict=True)}


@pytest.mark.parametrize("profile", ["systolic_4x4", "systolic_8x8"])
def test_systolic_cycles_match_closed_form_and_scalesim(tmp_path, profile):
    p = get_profile(profile)
    ss = run_scalesim(tmp_path, p.rows, p.cols)
    for name, m, n, k in GEMMS:
        closed = -(-k // p.rows) * -(-n // p.cols) * (2 * p.rows + p.cols + m - 2)
        mask = np.ones((n, k), dtype=bool)
        ours = cost_kernel(p, Kernel(name, "fwd", "spmm", m, name, mask=mask)).compute_cycles
        total, stall = ss[name]
        assert ours == closed
        assert stall == 0
        assert total == closed - 1, (name, total, closed)
