"""The architecture as tests: the import arrows point one way, and shipped code reads only files
that ship with it (checked on a real wheel, installed outside the source tree)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("tinyzero", "data_gen")
# Modules that import nothing of the project but themselves: anything may depend on them.
LEAVES = ("tinyzero.rewards", "tinyzero.stats", "tinyzero.files", "tinyzero.hub", "tinyzero.progress")
# Third-party packages a leaf may use: core dependencies (pyproject's `dependencies`), which every
# install has. tinyzero.rewards is held to the standard library alone by its own test below.
LEAF_DEPENDENCIES = {"tqdm"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions, absolute names."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_imports() -> dict[str, set[str]]:
    modules = {}
    for top in SHIPPED:
        for path in sorted((ROOT / top).rglob("*.py")):
            modules[module_name(path)] = imports_of(path)
    return modules


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_imports_point_one_way():
    # (importer, imported): forbidden arrows, as DESIGN.md draws them.
    forbidden = [
        ("tinyzero.train", "tinyzero.eval"),
        ("tinyzero.train", "tinyzero.aha"),
        ("tinyzero.eval", "tinyzero.train"),
        ("tinyzero.aha", "tinyzero.eval"),
        ("tinyzero.aha", "tinyzero.train"),
        ("tinyzero.recipe", "tinyzero.train"),
        ("tinyzero.recipe", "tinyzero.eval"),
        ("tinyzero.recipe", "tinyzero.aha"),
    ]
    wrong = []
    for module, imported in project_imports().items():
        for name in imported:
            for importer, target in forbidden:
                if within(module, importer) and within(name, target):
                    wrong.append(f"{module} imports {name}")
            # Nothing imports eval or aha except their own modules (the entry points).
            for closed in ("tinyzero.eval", "tinyzero.aha"):
                if within(name, closed) and not within(module, closed):
                    wrong.append(f"{module} imports {name}")
            # data_gen sits below tinyzero: of the project it uses only the leaves.
            if within(module, "data_gen") and within(name, "tinyzero"):
                if not any(within(name, leaf) for leaf in LEAVES) and name != "tinyzero":
                    wrong.append(f"{module} imports {name} (data_gen may use only {', '.join(LEAVES)})")
    assert not sorted(set(wrong))


def test_leaves_import_only_the_standard_library_and_themselves():
    wrong = []
    for module, imported in project_imports().items():
        leaf = next((leaf for leaf in LEAVES if within(module, leaf)), None)
        if leaf is None:
            continue
        for name in imported:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names | LEAF_DEPENDENCIES and not within(name, leaf) and top != "__future__":
                wrong.append(f"{module} imports {name}")
    assert not wrong


def test_importing_the_rewards_loads_no_third_party_module():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import tinyzero.rewards, tinyzero.rewards.trl\n"
        "loaded = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(m for m in loaded if m not in sys.stdlib_module_names and m != 'tinyzero'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_importing_data_gen_loads_neither_torch_verl_nor_hydra():
    code = (
        "import sys, data_gen, data_gen.tasks\n"
        "print(sorted({'torch', 'verl', 'hydra', 'omegaconf', 'ray', 'transformers'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_importing_the_training_package_registers_nothing_with_hydra():
    code = (
        "import sys, tinyzero.train, tinyzero.recipe\n"
        "from hydra.core.config_store import ConfigStore\n"
        "print('tinyzero_train' in ConfigStore.instance().repo)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """The project built as a wheel and installed into a folder of its own, far from the sources."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work), str(ROOT)],
        check=True, capture_output=True, text=True,
    )
    wheel = next(work.glob("tinyzero-*.whl"))
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True,
    )
    return target


def run_installed(target: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(target)}
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, cwd=cwd, env=environment)


def test_the_installed_wheel_runs_from_its_own_files(installed_wheel, tmp_path):
    where = run_installed(installed_wheel, "-c", "import tinyzero, data_gen; print(tinyzero.__file__, data_gen.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(installed_wheel)) for path in where.stdout.split()), where.stdout
    # The labelled set is package data: the detectors' evaluation needs no source tree.
    detectors = run_installed(installed_wheel, "-m", "tinyzero.aha", "--evaluate-detectors", cwd=tmp_path)
    assert detectors.returncode == 0, detectors.stderr[-2000:]
    assert "precision" in detectors.stdout.lower()
    # Recipes and the primary config ship too: a recipe's data folder is found from the wheel alone.
    recipe = run_installed(
        installed_wheel, "-c",
        "from tinyzero.recipe import recipe_config, recipe_files, task_data_dir, primary_config_file\n"
        "print(len(recipe_files()), primary_config_file().is_file(), task_data_dir(recipe_config('countdown_3b'))[0].name)",
        cwd=tmp_path,
    )
    assert recipe.returncode == 0, recipe.stderr[-2000:]
    count, primary, folder = recipe.stdout.split()
    assert int(count) >= 6 and primary == "True" and folder.startswith("countdown-")


def test_shipped_code_names_no_path_outside_its_package():
    """The source-level guard beside the wheel test: no module climbs out of the package to a
    tests/ (or any sibling) folder."""
    wrong = []
    for top in SHIPPED:
        for path in sorted((ROOT / top).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for needle in ('"tests"', "'tests'", '"tests/', "'tests/", "parents[2]", "parents[3]"):
                if needle in text:
                    wrong.append(f"{path.relative_to(ROOT)}: {needle}")
    assert not wrong


def test_every_registered_task_is_scored_by_the_rewards_it_names():
    import tinyzero.rewards as rewards
    from data_gen import TASKS
    from data_gen.tasks import TASK_SPECS

    assert set(TASKS) == set(TASK_SPECS) and set(TASK_SPECS) <= set(rewards.TASKS)
    for name, spec in TASK_SPECS.items():
        assert spec.reward.__module__.startswith("tinyzero.rewards")
        assert spec.ground_truth_fields == rewards.score.GROUND_TRUTH_FIELDS[name]
        assert spec.config.task == name and spec.prompt("base", *{"countdown": ([1, 2], 3), "multiply": (12, 34)}[name])
