"""Recipes: find them, compose one, complete its task block, name the data folder it keys.

The one home shared by training (`python -m tinyzero.train +recipe=NAME`) and evaluation
(`python -m tinyzero.eval recipe=NAME`): both must agree on what a recipe means and where its
generated data lives. A recipe is configuration (recipes/NAME.yaml, shipped as `tinyzero.recipes`);
the primary config it is merged into is tinyzero/train/conf/train.yaml on top of verl's ppo_trainer.

Two ways to read a recipe:
- `compose(overrides)`: the whole training config, exactly as the training app composes it (Hydra,
  verl's config groups included). Registers the configs with Hydra's ConfigStore on first use.
- `recipe_config(name)`: only tinyzero's own layer (primary config + recipe, plain OmegaConf, no
  Hydra), enough for the task block and data_root. Eval uses this: it runs inside its own Hydra
  app, and Hydra's global state must not be touched there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PRIMARY_CONFIG = "tinyzero_train"


class CheckError(Exception):
    """A config cannot run: the message names the keys, the values and what to change.

    Defined here, not in tinyzero.train.checks, because a recipe's task block is checked here and
    eval imports this module without importing the training app.
    """


def primary_config_file():
    """tinyzero/train/conf/train.yaml, reached from the `tinyzero` package so that reading it does
    not import the training app (eval reads it too)."""
    return files("tinyzero").joinpath("train", "conf", "train.yaml")


def recipe_files() -> dict[str, Path]:
    """Recipe name -> YAML file, from the installed `tinyzero.recipes` package (the top-level recipes/ folder)."""
    folder = files("tinyzero.recipes")
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def check_recipe_name(recipe: str) -> Path:
    """The YAML file of a recipe; CheckError listing the recipes when there is none by that name."""
    recipes = recipe_files()
    if recipe not in recipes:
        raise CheckError(f"recipe={recipe!r} is not a recipe; use one of {', '.join(sorted(recipes))}")
    return recipes[recipe]


def with_task_defaults(config: DictConfig) -> DictConfig:
    """The config with its task block completed from the task's generator config defaults, so every
    generator field shows in `--cfg job` and takes a plain override (task.train_size=1000) while
    data_gen stays the one home of their default values."""
    from data_gen.tasks import TASK_SPECS

    task = config.get("task")
    if task is not None and task.get("name") in TASK_SPECS:
        defaults = dataclasses.asdict(TASK_SPECS[task.name].config())
        config.task = OmegaConf.merge({"name": task.name, **defaults}, task)
    return config


_registered = False


def register_configs() -> None:
    """Hydra finds the primary config and the `recipe` group in its ConfigStore: this works the same
    from a source checkout and an installed wheel, with recipes/ kept at the top of the repository.
    Called when an app or a composition starts, never on import; once per process."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name=PRIMARY_CONFIG, node=OmegaConf.load(primary_config_file()))
    for name, path in recipe_files().items():
        store.store(group="recipe", name=name, node=with_task_defaults(OmegaConf.load(path)), package="_global_")
    _registered = True


def compose(overrides: list[str]) -> DictConfig:
    """The config `python -m tinyzero.train OVERRIDES...` would run with (for tests and notebooks).
    Uses Hydra's global state: call it where no Hydra app is running."""
    from hydra import compose as hydra_compose
    from hydra import initialize

    register_configs()
    with initialize(config_path=None, version_base=None):
        return hydra_compose(PRIMARY_CONFIG, overrides=overrides)


def recipe_config(recipe: str) -> DictConfig:
    """tinyzero's layer of a recipe's config: the primary config, then the recipe, task block
    completed. The same merge order as `compose` (verl's ppo_trainer has no `task` or `data_root`),
    so its task block and data folder are those training uses; no Hydra state is involved."""
    path = check_recipe_name(recipe)
    primary = OmegaConf.load(primary_config_file())
    for hydra_only in ("defaults", "hydra"):
        primary.pop(hydra_only, None)
    return with_task_defaults(OmegaConf.merge(primary, OmegaConf.load(path)))


def task_config(config: DictConfig):
    """The task's generator config (from data_gen's task registry) the `task` block describes, validated."""
    from data_gen.tasks import TASK_SPECS

    knobs = OmegaConf.to_container(config.task, resolve=True)
    name = knobs.pop("name")
    if name not in TASK_SPECS:
        raise CheckError(f"task.name={name!r} is not a data_gen task; use one of {', '.join(sorted(TASK_SPECS))}")
    config_class = TASK_SPECS[name].config
    try:
        generator = config_class(**knobs)
    except TypeError as error:
        fields = ", ".join(field.name for field in dataclasses.fields(config_class))
        raise CheckError(f"task: {error}; {config_class.__name__} takes: name, {fields}") from error
    try:
        generator.validate()
    except ValueError as error:
        raise CheckError(f"task ({name}): {error}") from error
    return name, generator


def task_data_dir(config: DictConfig) -> tuple[Path, object]:
    """DATA_ROOT/<task>-<hash>: the hash covers every generator field, so a changed knob gets new files."""
    name, generator = task_config(config)
    fingerprint = json.dumps({"task": name, **dataclasses.asdict(generator)}, sort_keys=True, default=str)
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    return absolute(config.data_root) / f"{name}-{digest}", generator


def absolute(path) -> Path:
    """A path from the config, ~ expanded and absolute: Ray workers do not run in the launcher's folder."""
    return Path(os.path.expanduser(str(path))).resolve()
