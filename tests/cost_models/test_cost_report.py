"""CostReport: energy = counts x table, totals, monotonicity, schedule bounds, JSON/CSV."""

import csv
import io
import json

import networkx as nx
import pytest

from cost_models.energy import COMPONENTS, action_energy_pj, static_pj
from cost_models.networks import mast_network_layers
from cost_models.report import evaluate
from cost_models.schedule import critical_path, list_schedule
from cost_models.workload import WorkloadConfig
from hw.profiles import get_profile

RUN = WorkloadConfig(batch_size=4, episode_limit=9, t_max=10_000)


@pytest.fixture(scope="module")
def report():
    return evaluate(get_profile("sparse_pe_16"), mast_network_layers("3m", 0.9), RUN)


def test_row_energy_is_counts_times_table(report):
    p = get_profile("sparse_pe_16")
    table = action_energy_pj(p)
    for row in report.training_rows + report.inference_rows:
        assert set(row.energy_pj) == set(COMPONENTS)
        by_comp = dict.fromkeys(COMPONENTS, 0.0)
        for action, count in row.actions.items():
            comp, pj = table[action]
            by_comp[comp] += count * pj
        for comp in ("mac", "vector", "sram", "index"):
            assert row.energy_pj[comp] == pytest.approx(by_comp[comp])
        dram = sum(row.dram_bytes.values()) * p.energy.dram_pj_per_byte
        assert row.energy_pj["dram"] == pytest.approx(dram)
        assert row.energy_pj["static"] == pytest.approx(static_pj(p, row.cycles))
    t = report.training
    for comp in ("mac", "vector", "sram", "index", "dram"):
        rows = report.training_rows
        assert t.energy_pj[comp] == pytest.approx(sum(r.energy_pj[comp] for r in rows))
    assert t.energy_pj["static"] == pytest.approx(static_pj(p, t.cycles))
    assert table["macs"] == ("mac", p.energy.mac_pj)
    assert t.energy_j == pytest.approx(sum(t.energy_pj.values()) * 1e-12)


def test_energy_of_actions_by_hand():
    from cost_models.energy import energy_pj

    p = get_profile("sparse_pe_64")
    e = p.energy
    got = energy_pj(
        p,
        {"macs": 10, "weight_sram_reads": 4, "index_reads": 4, "adds": 3},
        dram_bytes=2,
        cycles=200,
    )
    assert got["mac"] == pytest.approx(10 * e.mac_pj)
    # A weight read reaches one 2 KiB bank of the 128 KiB weight SRAM (64 banks).
    assert got["sram"] == pytest.approx(4 * e.sram_small_pj)
    assert got["index"] == pytest.approx(4 * e.index_pj)
    assert got["vector"] == pytest.approx(3 * e.add_pj)
    assert got["dram"] == pytest.approx(2 * e.dram_pj_per_byte)
    assert got["static"] == pytest.approx(p.static_power_w * 200 / p.clock_hz * 1e12)


def test_schedule_bounds_and_utilisation(report):
    t = report.training
    assert t.critical_path <= t.cycles <= t.serial_cycles
    assert t.busy["pe"] <= t.cycles
    assert 0 < t.utilisation <= t.utilisation_compute <= 1
    i = report.inference
    assert i.critical_path <= i.cycles <= i.serial_cycles
    assert report.train_cycles_per_env_step == pytest.approx(t.cycles / RUN.episode_limit)
    assert report.run_time_s == pytest.approx(RUN.iterations * t.time_s + RUN.t_max * i.time_s)


def test_list_schedule_overlaps_resources():
    g = nx.DiGraph([("a", "b"), ("a", "c"), ("c", "d")])
    dur = {"a": 2.0, "b": 5.0, "c": 3.0, "d": 1.0}
    res = {"a": "pe", "b": "vec", "c": "pe", "d": "pe"}
    s = list_schedule(g, dur, res)
    assert s.makespan == 7.0 and s.critical_path == critical_path(g, dur) == 7.0
    assert s.start["b"] == 2.0 and s.start["c"] == 2.0
    res_one = dict.fromkeys(res, "pe")
    assert list_schedule(g, dur, res_one).makespan == 11.0


@pytest.mark.parametrize("profile", ["sparse_pe_16", "sparse_pe_64", "systolic_4x4"])
def test_sparsity_monotonicity(profile):
    p = get_profile(profile)
    levels = [0.0, 0.5, 0.8, 0.9, 0.95]
    reps = [evaluate(p, mast_network_layers("3m", s), RUN) for s in levels]
    pe = [r.training.pe_compute_cycles for r in reps]
    inf = [r.inference.pe_compute_cycles for r in reps]
    if p.is_sparse:
        assert all(a > b for a, b in zip(pe, pe[1:], strict=False))
        assert all(a > b for a, b in zip(inf, inf[1:], strict=False))
        assert reps[-1].training.cycles < reps[0].training.cycles / 8
    else:  # a dense array computes every weight: cycles do not depend on the masks
        assert len(set(pe)) == 1 and len(set(inf)) == 1
    macs = [r.training.macs for r in reps]
    assert all(a > b for a, b in zip(macs, macs[1:], strict=False))


def test_serialisation(report):
    d = json.loads(report.to_json())
    assert d["profile"] == "sparse_pe_16" and d["summary"]["train_cycles"] == report.training.cycles
    assert len(d["training_rows"]) == len(report.training_rows)
    rows = list(csv.DictReader(io.StringIO(report.rows_csv())))
    assert {r["workload"] for r in rows} == {"training", "inference"}
    cyc = sum(
        float(r["compute_cycles"])
        for r in rows
        if r["workload"] == "training" and r["resource"] == "pe"
    )
    assert cyc == pytest.approx(report.training.pe_compute_cycles)


def test_rows_sum_their_kernels_weighted_per_iteration(report):
    """Each layer x phase row is the sum of its kernels' own costs times their weights."""
    from cost_models.kernels import cost_kernel
    from cost_models.workload import training_graph

    p = get_profile("sparse_pe_16")
    g = training_graph(p, mast_network_layers("3m", 0.9), RUN)
    rows = {(r.layer, r.phase): r for r in report.training_rows}
    want: dict = {}
    for _, data in g.nodes(data=True):
        k = data["kernel"]
        c = cost_kernel(p, k)
        key = (k.layer or k.label or k.name, k.phase)
        acc = want.setdefault(key, {"kernels": 0, "cycles": 0.0, "macs": 0.0, "ops": 0.0})
        acc["kernels"] += 1
        acc["cycles"] += c.cycles * k.weight
        acc["macs"] += c.macs * k.weight
        acc["ops"] += c.ops * k.weight
    assert set(rows) == set(want)
    for key, acc in want.items():
        r = rows[key]
        assert r.kernels == acc["kernels"]
        assert r.cycles == pytest.approx(acc["cycles"], rel=1e-12)
        assert r.macs == pytest.approx(acc["macs"], rel=1e-12)
        assert r.ops == pytest.approx(acc["ops"], rel=1e-12)
