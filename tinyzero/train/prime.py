"""Priming: supervised fine-tuning on data_gen's reasoning traces before RL, with verl 0.9.1's own
SFT trainer (s1, Muennighoff et al. 2025; Gandhi et al. 2025: priming with traces that verify and
backtrack is what lets a small model start improving under RL).

A recipe asks for it with a `priming` block:

    priming:
      traces:   # data_gen.traces.TracesConfig's knobs; its problems are the task block's
        size: 1000
        search_fraction: 0.5
      sft:      # verl's sft_trainer_engine config, merged over verl's defaults
        trainer: {total_epochs: 3}
        optim: {lr: 1.0e-5}
        data: {train_batch_size: 64, micro_batch_size_per_gpu: 4, max_length: 1024}

`prime(config)` returns the primed model's folder, priming first when it is missing. The folder,
DATA_ROOT/primed/<task>-<hash>/, is keyed by the base model, the traces config (task block
included), the sft block and the chat template, so a changed knob never reuses a stale model.
GRPO then starts from `<folder>/model` (actor_rollout_ref.model.path).

The SFT run is a process of its own: verl's SFT trainer needs torch.distributed from torchrun (one
process per GPU, one on a CPU), and the RL launch that follows must inherit neither its process
group nor its memory. `python -m torch.distributed.run --standalone --nproc_per_node=N -m
tinyzero.train.prime FOLDER/sft.yaml` composes verl's `sft_trainer_engine` as verl's own main does,
merges sft.yaml over it and calls verl's `run_sft`. The launch, not the recipe, settles what must
agree with the RL run: the model, the traces file, the chat template (tinyzero.templates: the trace
ends with EOS, where RL generation stops), the attention kernel and FSDP strategy (the actor's),
the device (verl's platform: the CPU platform on a machine without GPUs), Hugging Face weights in
the checkpoint and console logging.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from tinyzero.recipe import CheckError, absolute, task_config
from tinyzero.templates import chat_template_for

MODEL_FOLDER = "model"  # the primed Hugging Face model, what GRPO starts from
RECORD_FILE = "priming.json"  # written last: its presence means the model is complete
SFT_FILE = "sft.yaml"

# The sft keys the launch sets (a recipe setting them would make SFT and RL disagree).
LAUNCH_KEYS = (
    "model.path", "model.custom_chat_template", "model.override_config.attn_implementation",
    "engine.strategy", "engine.mixed_precision", "data.train_files", "trainer.default_local_dir", "trainer.device",
    "checkpoint.save_contents",
)


def _select(config: DictConfig, key: str):
    return OmegaConf.select(config, key, default=None)


def traces_config(config: DictConfig):
    """The TracesConfig the priming block and the task block describe (CheckError naming the key)."""
    from data_gen.traces import TracesConfig

    _, generator = task_config(config)
    knobs = OmegaConf.to_container(config.priming.get("traces") or {}, resolve=True)
    names = [field.name for field in dataclasses.fields(TracesConfig) if field.name != "data"]
    unknown = sorted(set(knobs) - set(names))
    if unknown:
        raise CheckError(f"priming.traces.{unknown[0]} is not a traces knob; use {', '.join(names)}")
    traces = TracesConfig(data=generator, **knobs)
    try:
        traces.validate()
    except ValueError as error:
        raise CheckError(f"priming.traces: {error}") from error
    return traces


def sft_block(config: DictConfig) -> DictConfig:
    """The recipe's verl SFT overrides, refusing the keys the launch owns."""
    block = config.priming.get("sft") or OmegaConf.create({})
    for key in LAUNCH_KEYS:
        if _select(block, key) is not None:
            raise CheckError(f"priming.sft.{key} is set by the launch (to agree with the RL run); remove it")
    return block


def processes(device: str, config: DictConfig) -> int:
    """One SFT process per GPU of one node (priming is small: one node is plenty); one on a CPU."""
    return 1 if device == "cpu" else int(config.trainer.n_gpus_per_node)


def check_batch(config: DictConfig, traces, nprocs: int) -> str:
    """verl drops the last partial batch: a batch larger than the traces would train zero steps."""
    batch = _select(sft_block(config), "data.train_batch_size")
    if batch is None:
        raise CheckError("priming.sft.data.train_batch_size is not set; verl's default (256) is sized for large sets: "
                         f"set it to at most priming.traces.size ({traces.size})")
    batch = int(batch)
    if batch > traces.size:
        raise CheckError(f"priming.sft.data.train_batch_size={batch} is above priming.traces.size={traces.size}: "
                         "verl drops the last partial batch, so priming would train zero steps; lower the batch")
    if batch % nprocs:
        raise CheckError(f"priming.sft.data.train_batch_size={batch} does not divide among {nprocs} SFT processes")
    epochs = int(_select(sft_block(config), "trainer.total_epochs") or 1)
    return f"{traces.size // batch} steps per epoch x {epochs} epochs, batch {batch}"


def cpu_compute_dtype(config: DictConfig) -> str | None:
    """The SFT engine's compute dtype on a CPU (tinyzero.train.cpu.compute_dtype: fp32 where bf16
    would be emulated); None on an accelerator, where verl's bf16 stays."""
    from verl.utils.device import get_device_name

    if get_device_name() != "cpu":
        return None
    from tinyzero.train.cpu import compute_dtype

    return compute_dtype(config)[0]


def fingerprint(config: DictConfig, traces) -> dict:
    """Everything the primed model depends on."""
    return {
        "model": str(config.actor_rollout_ref.model.path),
        "traces": dataclasses.asdict(traces),
        "sft": OmegaConf.to_container(sft_block(config), resolve=True),
        "chat_template": chat_template_for(config.task.prompt_style),
        "cpu_dtype": cpu_compute_dtype(config),
    }


def primed_dir(config: DictConfig, traces) -> Path:
    digest = hashlib.sha256(json.dumps(fingerprint(config, traces), sort_keys=True, default=str).encode()).hexdigest()[:12]
    return absolute(config.data_root) / "primed" / f"{traces.task}-{digest}"


def is_primed(config: DictConfig) -> bool:
    """Whether the primed model of exactly this priming config is complete (its record is written last)."""
    return (primed_dir(config, traces_config(config)) / RECORD_FILE).is_file()


def launch_layer(config: DictConfig, folder: Path, traces_file: Path) -> DictConfig:
    """The launch's sft keys (LAUNCH_KEYS), over the recipe's block. The device is the worker's to
    say (verl's platform, in that process)."""
    template = chat_template_for(config.task.prompt_style)
    model = config.actor_rollout_ref.model
    layer = {
        "model": {
            "path": str(model.path),
            "override_config": {"attn_implementation": _select(model, "override_config.attn_implementation") or "sdpa"},
        },
        "engine": {"strategy": str(config.actor_rollout_ref.actor.strategy)},
        "data": {"train_files": str(traces_file)},
        # verl resumes from here after a crash (resume_mode auto) when priming.sft.trainer.save_freq
        # saved a checkpoint (verl's default saves only at the end); removed once the model is out.
        "trainer": {"default_local_dir": str(folder / "checkpoints")},
        "checkpoint": {"save_contents": ["model", "optimizer", "extra", "hf_model"]},
    }
    if template is not None:
        layer["model"]["custom_chat_template"] = template
    dtype = cpu_compute_dtype(config)
    if dtype is not None:  # the FSDP engine autocasts to param_dtype, and skips autocast for fp32
        layer["engine"]["mixed_precision"] = {"param_dtype": dtype, "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    # Defaults a recipe may change: console logging (verl's default includes wandb), and no data
    # loader workers (a thousand short rows: verl's 8 worker processes only cost start-up time).
    defaults = {"trainer": {"logger": ["console"], "project_name": "tinyzero-priming", "experiment_name": folder.name},
                "data": {"num_workers": 0}}
    return OmegaConf.merge(defaults, sft_block(config), layer)


def check_lengths(layer: DictConfig, traces_file: Path) -> str:
    """Every prompt + trace within data.max_length (verl raises mid-run otherwise, truncation=error)."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(layer.model.path)
    if _select(layer, "model.custom_chat_template"):
        tokenizer.chat_template = layer.model.custom_chat_template
    messages = pq.read_table(traces_file, columns=["messages"]).column("messages").to_pylist()
    longest = max(len(tokenizer.apply_chat_template(m, tokenize=True)["input_ids"]) for m in messages)
    limit = int(_select(layer, "data.max_length") or 1024)  # verl's default
    if longest > limit:
        raise CheckError(f"priming.sft.data.max_length={limit} but the longest prompt + trace is {longest} tokens: raise it")
    return f"longest prompt + trace {longest} tokens (max_length {limit})"


def prime(config: DictConfig, dry_run: bool = False) -> tuple[Path, list[str]]:
    """(the primed model's folder, the plan's lines); primes first unless it exists (or dry_run)."""
    from verl.utils.device import get_device_name

    traces = traces_config(config)
    nprocs = processes(get_device_name(), config)
    batch = check_batch(config, traces, nprocs)
    folder = primed_dir(config, traces)
    model = folder / MODEL_FOLDER
    if is_primed(config):
        return model, [f"priming: reusing {model}"]
    if dry_run:
        return model, [f"priming: would prime {config.actor_rollout_ref.model.path} into {model} ({batch})"]

    from data_gen.traces import TRACES_FILE, write_traces

    traces_file = folder / "traces" / TRACES_FILE
    if not traces_file.is_file():
        print(f"[tinyzero] priming: writing {traces.size} traces into {traces_file.parent} ...", flush=True)
        write_traces(traces, traces_file.parent)
    layer = launch_layer(config, folder, traces_file)
    lengths = check_lengths(layer, traces_file)
    OmegaConf.save(layer, folder / SFT_FILE)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nprocs}",
               "-m", "tinyzero.train.prime", str(folder / SFT_FILE)]
    print(f"[tinyzero] priming: {' '.join(command)}", flush=True)
    if subprocess.run(command).returncode != 0:
        raise RuntimeError(f"priming failed (its output is above); the SFT config is {folder / SFT_FILE}. A rerun "
                           f"resumes from a checkpoint in {folder / 'checkpoints'} if priming.sft.trainer.save_freq "
                           "saved one, else primes from the start")
    _collect_model(folder, model)
    (folder / RECORD_FILE).write_text(json.dumps(fingerprint(config, traces), indent=2, default=str) + "\n")
    return model, [f"priming: primed {model} ({batch}; {lengths})"]


def _collect_model(folder: Path, model: Path) -> None:
    """Move the last checkpoint's Hugging Face folder to `model`, then drop the FSDP shards and the
    optimizer state (for 1.5B parameters, about 18 GB that GRPO never reads)."""
    checkpoints = folder / "checkpoints"
    step = (checkpoints / "latest_checkpointed_iteration.txt").read_text().strip()
    source = checkpoints / f"global_step_{step}" / "huggingface"
    if not (source / "config.json").is_file():
        raise RuntimeError(f"priming finished but {source} holds no Hugging Face model")
    shutil.rmtree(model, ignore_errors=True)
    os.replace(source, model)
    shutil.rmtree(checkpoints)


def verl_sft_config(layer: DictConfig, device: str) -> DictConfig:
    """verl's sft_trainer_engine config (composed as verl's own SFT main does), with the launch
    layer and the device merged in. Uses Hydra's global state: call it where no Hydra app runs."""
    import verl
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=os.path.join(os.path.dirname(verl.__file__), "trainer", "config"), version_base=None):
        config = compose("sft_trainer_engine")
    # verl's config is a struct: a misspelt key in priming.sft fails here, before any model loads.
    # override_config is free-form by design (Hugging Face config keys); engine.mixed_precision is a
    # field of verl's FSDPEngineConfig (verl/workers/config/engine.py 291) that its YAML leaves out.
    with open_dict(config.model.override_config), open_dict(config.engine):
        config.merge_with(layer, {"trainer": {"device": device}})
    return config


def run_worker(sft_file: str) -> None:
    """Inside torchrun: verl's sft_trainer_engine config, then sft.yaml, then verl's run_sft."""
    from verl.trainer.sft_trainer import run_sft
    from verl.utils.device import get_device_name

    run_sft(verl_sft_config(OmegaConf.load(sft_file), get_device_name()))


if __name__ == "__main__":
    run_worker(sys.argv[1])
