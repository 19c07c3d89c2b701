"""verl's real training loop on this CPU: the CPU platform (tinyzero.platforms), then the
end-to-end run of `python -m tinyzero.train +recipe=countdown_tiny`, eval and aha on what it wrote.

Each platform check runs in a fresh interpreter: verl resolves its platform once per process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinyzero.train.rollout import AGENT_LOOP_NAME


def run_python(code: str, env: dict | None = None, timeout: int = 240) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


# --- The CPU platform ------------------------------------------------------------------------


def test_verl_chooses_the_cpu_platform_without_an_accelerator():
    out = run_python(
        """
        import os
        import verl
        from verl.plugin.platform import PlatformRegistry, get_platform
        from verl.utils.device import get_device_name, get_nccl_backend, get_resource_name, get_torch_device
        print(PlatformRegistry.registered_names()[-1], get_platform().__class__.__name__)
        print(get_device_name(), get_nccl_backend(), get_resource_name())
        device = get_torch_device()
        device.empty_cache(); device.synchronize()
        free, total = device.mem_get_info()
        print(0 < free <= total, device.memory_allocated(), device.get_rng_state().dtype)
        import torch
        print(torch.zeros(2, device=verl.utils.device.get_device_id()).device)
        """
    )
    assert out.split("\n")[:4] == ["cpu PlatformCPU", "cpu gloo GPU", "True 0 torch.uint8", "cpu"]


def test_an_accelerator_platform_wins_over_cpu():
    """A registered platform that is available (here a stand-in for a GPU) is chosen, and the
    CPU fixes stay out; `VERL_PLATFORM=cpu` forces the CPU platform."""
    out = run_python(
        """
        import verl
        from verl.plugin.platform.platform_manager import PlatformRegistry, _detect_platform_name
        from verl.plugin.platform.platform_cuda import PlatformCUDA
        from tinyzero.platforms import cpu

        @PlatformRegistry.register(platform="fakegpu")
        class FakeGPU(PlatformCUDA):
            def is_platform_available(self, use_smi_check=False):
                return True

        print(_detect_platform_name(), cpu.accelerator_available(), cpu.cpu_platform_chosen())
        """
    )
    assert out.split() == ["fakegpu", "True", "False"]
    forced = run_python(
        "from tinyzero.platforms import cpu; print(cpu.cpu_platform_chosen())", env={"VERL_PLATFORM": "nvidia"}
    )
    assert forced.split() == ["False"]


def test_verl_process_group_comes_up_on_gloo():
    """verl's own "cpu:gloo,{device}:{backend}" reads "cpu:gloo,cpu:gloo" here, which torch rejects."""
    out = run_python(
        """
        import torch.distributed as dist
        import verl
        from verl.utils.distributed import initialize_global_process_group_ray
        initialize_global_process_group_ray(timeout_second=60)
        tensor = __import__("torch").ones(3)
        dist.all_reduce(tensor)
        print(dist.get_backend(), tensor.tolist())
        dist.destroy_process_group()
        """,
        env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29581", "RANK": "0", "WORLD_SIZE": "1"},
    )
    assert out.split("\n")[0] == "cpu:gloo [1.0, 1.0, 1.0]"


def test_fsdp_engine_reference_offload_and_rollout_are_the_cpu_ones():
    out = run_python(
        """
        import verl
        from verl.workers.engine import EngineRegistry
        from verl.workers.engine.fsdp import transformer_impl
        from verl.workers.rollout.replica import get_rollout_replica_class
        print(EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__)
        print(transformer_impl.CPUOffloadPolicy(pin_memory=True).pin_memory)
        print(get_rollout_replica_class("vllm").__name__)
        """
    )
    assert out.split("\n")[:3] == ["FSDPEngineWithLMHead", "False", "CPUvLLMReplica"]


def test_trl_without_a_value_head_is_not_offered_to_verl():
    """verl 0.9.1 imports trl's value head whenever trl is importable; trl >= 1.13 has none."""
    out = run_python(
        """
        from importlib import metadata
        import verl
        from verl.models.transformers import monkey_patch
        from verl.utils.import_utils import is_trl_available
        version = tuple(int(part) for part in metadata.version("trl").split(".")[:2])
        print(version >= (1, 13), is_trl_available(), monkey_patch.is_trl_available())
        """
    )
    without_value_head, verl_sees, monkey_patch_sees = out.split()
    assert without_value_head == "True"  # the test extra's trl (>= 1.14.2)
    assert (verl_sees, monkey_patch_sees) == ("False", "False")


# --- The launch on a CPU: the tiny model, the CPU-run checks, the plan -------------------------


def tiny(*overrides, tmp_path):
    from tinyzero.recipe import compose

    return compose(["+recipe=countdown_tiny", f"data_root={tmp_path}", *overrides])


def test_the_tiny_model_is_built_once_per_config(tmp_path):
    from tinyzero.train.app import prepare_tiny_model

    first, again = tiny(tmp_path=tmp_path), tiny(tmp_path=tmp_path)
    assert prepare_tiny_model(first).startswith("tiny model: built ")
    assert prepare_tiny_model(again) == f"tiny model: reusing {first.actor_rollout_ref.model.path}"
    assert (Path(first.actor_rollout_ref.model.path) / "tokenizer.json").is_file()
    wider = tiny("tiny_model.hidden_size=256", "tiny_model.num_attention_heads=8", tmp_path=tmp_path)
    prepare_tiny_model(wider)
    assert wider.actor_rollout_ref.model.path != first.actor_rollout_ref.model.path  # a changed knob: a new model
    assert json.loads((Path(wider.actor_rollout_ref.model.path) / "config.json").read_text())["hidden_size"] == 256


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tiny_model.num_attention_heads=3"], r"tiny_model: hidden_size \(128\) must be a multiple of num_attention_heads \(3\)"),
        (["+tiny_model.depth=2"], r"tiny_model: .*unexpected keyword argument 'depth'; it takes folder, hidden_size"),
        (["actor_rollout_ref.model.path=/some/model"], r"tiny_model and actor_rollout_ref.model.path='/some/model' are both set"),
    ],
)
def test_a_bad_tiny_model_block_is_named(tmp_path, overrides, message):
    from tinyzero.recipe import CheckError
    from tinyzero.train.app import prepare_tiny_model

    with pytest.raises(CheckError, match=message):
        prepare_tiny_model(tiny(*overrides, tmp_path=tmp_path))


def test_the_cpu_run_checks_name_every_setting_it_needs(tmp_path):
    from tinyzero.recipe import CheckError
    from tinyzero.train import cpu
    from tinyzero.train.app import prepare_tiny_model

    recipe = tiny(tmp_path=tmp_path)
    prepare_tiny_model(recipe)
    assert cpu.is_cpu_run(recipe, ray_address=None)  # no GPU here, and the recipe asks for a logical one
    assert "trainer.device=cpu" in cpu.check_cpu_run(recipe) and recipe.trainer.device == "cpu"

    wrong = tiny("actor_rollout_ref.actor.strategy=fsdp", "actor_rollout_ref.rollout.enable_sleep_mode=true",
                 "actor_rollout_ref.rollout.free_cache_engine=true", "tiny_model.hidden_size=32", tmp_path=tmp_path)
    prepare_tiny_model(wrong)
    with pytest.raises(CheckError) as error:
        cpu.check_cpu_run(wrong)
    for named in ("actor_rollout_ref.actor.strategy=fsdp2", "+actor_rollout_ref.rollout.enable_sleep_mode=false",
                  "free_cache_engine=true puts vLLM to sleep", "head size is 8"):
        assert named in str(error.value)


@pytest.mark.parametrize(
    ("flags", "environ", "native"),
    [
        ({"avx2"}, {}, False),  # AVX2 only: bf16 is emulated
        ({"avx2", "avx512f"}, {}, False),  # AVX-512 without its bf16 extension
        ({"avx2", "avx512f", "avx512_bf16"}, {}, True),
        ({"avx2", "amx_bf16"}, {}, True),
        ({"avx2", "avx512f", "avx512_bf16"}, {"ONEDNN_MAX_CPU_ISA": "avx2"}, False),  # oneDNN held below bf16
        ({"avx2", "avx512f", "avx512_bf16"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, True),
    ],
)
def test_native_bf16_is_read_from_the_processor_flags(flags, environ, native):
    from tinyzero.train import cpu

    found, why = cpu.native_bf16(flags, environ)
    assert found is native
    assert ("no native bf16" in why or "ONEDNN_MAX_CPU_ISA" in why) is not native


def test_cpu_flags_come_from_cpuinfo():
    from tinyzero.train import cpu

    cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\n"
    assert cpu.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2", "fma"}


def test_a_cpu_run_computes_in_fp32_without_native_bf16(tmp_path, monkeypatch):
    """Every engine (actor, reference, critic, vLLM) gets the dtype, through keys verl's dataclasses take."""
    from verl.utils.config import omega_conf_to_dataclass

    from tinyzero.recipe import CheckError
    from tinyzero.train import cpu

    monkeypatch.setattr(cpu, "native_bf16", lambda: (False, "this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)"))
    recipe = tiny("algorithm.adv_estimator=gae", tmp_path=tmp_path)
    line = cpu.settle_precision(recipe)
    assert line.startswith("fp32: this CPU has no native bf16") and "emulated" in line
    fp32 = {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    for engine in (recipe.actor_rollout_ref.actor.fsdp_config, recipe.actor_rollout_ref.ref.fsdp_config, recipe.critic.fsdp):
        assert dict(engine.mixed_precision) == fp32
        assert omega_conf_to_dataclass(engine).mixed_precision["param_dtype"] == "fp32"  # verl's FSDPEngineConfig takes it
    assert recipe.actor_rollout_ref.ref.fsdp_config.model_dtype == "fp32"
    assert recipe.actor_rollout_ref.rollout.dtype == "float32"

    monkeypatch.setattr(cpu, "native_bf16", lambda: (True, "this CPU has native bf16 (avx512_bf16)"))
    native = tiny(tmp_path=tmp_path)
    assert cpu.settle_precision(native) == "bf16: this CPU has native bf16 (avx512_bf16)"
    assert native.actor_rollout_ref.rollout.dtype == "bfloat16"
    forced = tiny("cpu_dtype=fp32", tmp_path=tmp_path)
    assert cpu.settle_precision(forced).startswith("fp32: cpu_dtype=fp32")
    with pytest.raises(CheckError, match=r"cpu_dtype='fp16': use one of auto, fp32, bf16"):
        cpu.settle_precision(tiny("cpu_dtype=fp16", tmp_path=tmp_path))


def test_priming_on_a_cpu_computes_in_the_runs_dtype(tmp_path, monkeypatch):
    """The SFT engine's mixed precision follows the RL run's, and keys the primed model's folder."""
    from tinyzero.train import cpu, prime
    from tinyzero.train.app import prepare_tiny_model

    recipe = tiny(tmp_path=tmp_path)
    prepare_tiny_model(recipe)
    monkeypatch.setattr(cpu, "native_bf16", lambda: (False, "no native bf16"))
    traces = prime.traces_config(recipe)
    folder = prime.primed_dir(recipe, traces)
    layer = prime.launch_layer(recipe, folder, folder / "traces.parquet")
    assert layer.engine.mixed_precision.param_dtype == "fp32"
    assert prime.verl_sft_config(layer, "cpu").engine.mixed_precision.param_dtype == "fp32"  # verl's struct takes it
    monkeypatch.setattr(cpu, "native_bf16", lambda: (True, "native"))
    assert prime.primed_dir(recipe, traces) != folder  # primed in bf16: another model


def test_a_cpu_run_needs_the_memory_its_processes_hold():
    """Short of it, Ray's memory monitor kills workers part way and verl waits forever: refuse first."""
    from tinyzero.recipe import CheckError
    from tinyzero.train import cpu
    from tinyzero.train.memory import GIB

    with pytest.raises(CheckError, match=r"about 7.5 GiB .* but this machine has 4.0 GiB available: stop other jobs"):
        cpu.check_memory(available=4 * GIB)
    assert cpu.check_memory(available=16 * GIB) == "about 7.5 GiB needed, 16.0 GiB available"


def test_a_gpu_recipe_without_logical_gpus_is_not_a_cpu_run(tmp_path):
    """Asking Ray for logical GPUs is what makes a CPU run; a GPU recipe here fails the GPU check as before."""
    from tinyzero.recipe import compose
    from tinyzero.train import cpu

    assert not cpu.is_cpu_run(compose(["+recipe=countdown_3b"]), ray_address=None)
    assert not cpu.is_cpu_run(tiny(tmp_path=tmp_path), ray_address="10.0.0.1:6379")  # a cluster has its own GPUs


def test_the_plan_says_when_every_advantage_is_zero(tmp_path):
    from tinyzero.train.app import zero_advantage_note

    unprimed = zero_advantage_note(tiny("priming=null", tmp_path=tmp_path))
    assert unprimed and "scores 0 on every answer, so every GRPO advantage is 0" in unprimed
    assert zero_advantage_note(tiny(tmp_path=tmp_path)) is None  # primed first: it answers some
    assert zero_advantage_note(tiny("priming=null", "reward.custom_reward_function.path=mine.py", tmp_path=tmp_path)) is None


# --- End to end: train, resume, eval, aha ----------------------------------------------------

TRAIN = [sys.executable, "-m", "tinyzero.train", "+recipe=countdown_tiny"]
# The project's reward gives a random model 0 for every answer, so GRPO's advantages are 0 and
# nothing moves. This one keeps the project's reward and adds a spread keyed by the response text:
# advantages are nonzero and the policy really updates. verl loads it as any custom reward.
VARIED_REWARD = '''
import zlib

from tinyzero.rewards import compute_score as project_score


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    scored = project_score(data_source=data_source, solution_str=solution_str, ground_truth=ground_truth,
                           extra_info=extra_info, **kwargs)
    return {**scored, "score": scored["score"] + (zlib.crc32(solution_str.encode()) % 8) / 8}
'''
DUMP_FIELDS = {"input", "output", "gts", "score", "step", "uid"}  # verl's v1 trainer rollout dump
# The first launch's agent loop stops at these instead of </answer>, which a barely primed model never
# writes: its 2 SFT steps taught it the traces' commonest token, a space, which it writes greedily
# first on every prompt and samples with a chance of about 1 in 3 a token.
STOP_LOOP_CLASS = "tinyzero.train.agent_loop.StopAtAnswerAgentLoop"
EARLY_STOPS = (" ", ">")


@dataclass
class TinyRun:
    work: Path
    outputs: Path  # trainer.default_local_dir
    first: subprocess.CompletedProcess  # 2 steps from scratch
    second: subprocess.CompletedProcess  # the same command with 3 steps: resumes at step 2

    def metrics(self) -> dict[int, dict]:
        """step -> verl's metrics, from the file logger's per-launch files."""
        rows = {}
        for path in sorted((self.outputs / "metrics").glob("*.jsonl")):
            for line in path.read_text().splitlines():
                record = json.loads(line)
                rows.setdefault(record["step"], {}).update(record["data"])
        return rows

    def data_folder(self) -> Path:
        (folder,) = (self.work / "data").glob("countdown-*")
        return folder


def run_command(command: list[str], cwd: Path, timeout: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run to the end; on a timeout the whole process group goes (the launcher's local Ray with it)
    and the failure shows the output so far."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(command)} ran past {timeout} s\n{stdout[-4000:]}\n{stderr[-6000:]}")
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    assert result.returncode == 0, f"{' '.join(command)}\n{stdout[-4000:]}\n{stderr[-6000:]}"
    return result


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> TinyRun:
    """`python -m tinyzero.train +recipe=countdown_tiny` for 2 steps, then 3 (a resume), once per session."""
    work = tmp_path_factory.mktemp("cpu-loop")
    (work / "varied_reward.py").write_text(VARIED_REWARD)
    outputs = work / "checkpoints"
    overrides = [
        f"data_root={work / 'data'}",
        f"trainer.default_local_dir={outputs}",
        f"reward.custom_reward_function.path={work / 'varied_reward.py'}",
        "trainer.test_freq=1",
        "trainer.save_freq=1",
        "data.max_response_length=64",  # short rollouts (the recipe's 128 leave room to answer)
        # The loop, not learning: a smaller model and held-out split than the recipe's (128 x 4, 400).
        "tiny_model.hidden_size=64", "tiny_model.num_layers=2", "tiny_model.num_attention_heads=2",
        "task.test_size=48",
        # The recipe's priming, kept short: 32 traces, 2 SFT steps (the full one is the README's demonstration).
        "priming.traces.size=32",
        "priming.sft.trainer.total_epochs=1",
        "priming.sft.data.train_batch_size=16",
        "priming.sft.data.micro_batch_size_per_gpu=16",
        # 8 prompts x 4 answers a step (the recipe's 16 x 8 is sized for learning, not for a test).
        "data.train_batch_size=8",
        "actor_rollout_ref.actor.ppo_mini_batch_size=8",
        "actor_rollout_ref.rollout.n=4",
        # Large steps: rollouts sampled with stale weights then differ from the actor by 0.8-2.3 nats
        # per sequence by step 2 (measured by skipping the weight load), against under 0.01 when synced.
        "actor_rollout_ref.actor.optim.lr=1e-1",
    ]
    # The first launch also validates the primed model before training, and its agent loop stops at
    # strings the primed model writes (see test_the_stop_reaches_vllm_through_verls_training_loop).
    loops = work / "agent_loops.yaml"
    loops.write_text(f"- name: {AGENT_LOOP_NAME}\n  _target_: {STOP_LOOP_CLASS}\n  stop: {list(EARLY_STOPS)}\n")
    first = run_command(
        [*TRAIN, *overrides, "trainer.total_training_steps=2", "trainer.val_before_train=true",
         f"actor_rollout_ref.rollout.agent.agent_loop_config_path={loops}"],
        work, timeout=600,
    )  # fmt: skip
    second = run_command(
        [*TRAIN, *overrides, "trainer.total_training_steps=3", "trainer.val_before_train=false"], work, timeout=600
    )
    return TinyRun(work, outputs, first, second)


def test_train_plans_the_cpu_run_then_resumes(tiny_run):
    plan = tiny_run.first.stdout
    assert "[tinyzero] platform   no GPU here: verl's CPU platform" in plan
    assert "check: data    longest prompt" in plan
    # Host memory, not the per-GPU estimate (vLLM's CPU build never sleeps; its KV cache is fixed).
    assert "memory     host memory, shared by every process" in plan and "check: memory  about 7.5 GiB needed" in plan
    # Priming ran first (verl's SFT trainer, 2 steps) and GRPO started from its model; the rerun reuses it.
    assert "priming: primed " in plan and "2 steps per epoch x 1 epochs, batch 16" in plan
    primed = next(line for line in tiny_run.second.stdout.splitlines() if "priming: reusing" in line).split()[-1]
    assert (Path(primed) / "config.json").is_file()
    both = tiny_run.first.stdout + tiny_run.first.stderr
    assert "Training from scratch" in both
    resumed = tiny_run.second.stdout + tiny_run.second.stderr
    assert f"Resuming from {tiny_run.outputs / 'global_step_2'}, setting global step to 2" in resumed
    assert (tiny_run.outputs / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
    for step in (1, 2, 3):
        actor = tiny_run.outputs / f"global_step_{step}" / "actor"
        assert (actor / "model_world_size_1_rank_0.pt").is_file() and (actor / "huggingface" / "config.json").is_file()
    assert sorted(tiny_run.metrics()) == [0, 1, 2, 3]  # 0: the first launch validated before training


def test_dumps_hold_the_dataset_prompts_unchanged(tiny_run):
    import pyarrow.parquet as pq

    def prompts(split):
        rows = pq.read_table(tiny_run.data_folder() / f"{split}.parquet", columns=["prompt"]).column(0).to_pylist()
        return {messages[0]["content"] for messages in rows}  # base prompts pass through as plain text

    for folder, split in (("rollouts", "train"), ("validation", "test")):
        dataset = prompts(split)
        for step in (1, 2, 3):
            rows = [json.loads(line) for line in (tiny_run.outputs / folder / f"{step}.jsonl").read_text().splitlines()]
            assert rows and all(DUMP_FIELDS <= set(row) for row in rows)
            assert all(row["step"] == step for row in rows)
            assert {row["input"] for row in rows} <= dataset  # whole prompts: none cut to max_prompt_length
    assert len((tiny_run.outputs / "rollouts" / "1.jsonl").read_text().splitlines()) == 8 * 4


def test_weights_change_and_rollouts_use_them(tiny_run):
    import torch

    metrics = tiny_run.metrics()
    assert all(metrics[step]["critic/advantages/max"] > 0 for step in (1, 2, 3))
    assert all(metrics[step]["actor/grad_norm"] > 0 for step in (1, 2, 3))

    def weights(step):
        shard = tiny_run.outputs / f"global_step_{step}" / "actor" / "model_world_size_1_rank_0.pt"
        state = torch.load(shard, map_location="cpu", weights_only=False)
        return {name: getattr(value, "_local_tensor", value) for name, value in state.items()}

    before, after = weights(2), weights(3)  # across the resume: the restored policy trains on
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[name], after[name]) for name in before)
    # vLLM samples with the weights the actor has: its log-probs of the sampled tokens match the
    # actor's after every weight sync (stale or mangled weights differ by tenths per token).
    assert all(metrics[step]["rollout_corr/log_ppl_abs_diff"] < 0.05 for step in (1, 2, 3)), {
        step: metrics[step]["rollout_corr/log_ppl_abs_diff"] for step in metrics
    }


def test_the_stop_reaches_vllm_through_verls_training_loop(tiny_run):
    """verl reads the first launch's agent-loop file, builds StopAtAnswerAgentLoop for training and
    validation, vLLM stops at its strings, and the responses verl keeps end there. Both checks are on
    the primed model, before any GRPO update (a random model never writes </answer>; that stop is
    tested on vLLM in tests/test_rollout.py). Without the stop every response runs to 64 tokens."""

    def outputs(dump):
        return [json.loads(line)["output"] for line in (tiny_run.outputs / dump).read_text().splitlines()]

    def stopped(text):
        return any(stop in text for stop in EARLY_STOPS) and len(text) < 16

    # Greedy validation before training: every answer stops at once.
    greedy = outputs("validation/0.jsonl")
    assert greedy and all(stopped(text) for text in greedy), greedy[:8]
    # Sampled answers of step 1: nearly all meet a stop string within a few tokens.
    sampled = outputs("rollouts/1.jsonl")
    assert sum(stopped(text) for text in sampled) >= 0.75 * len(sampled), sampled[:8]
    assert tiny_run.metrics()[1]["response_length/mean"] < 16  # of data.max_response_length=64
    # verl printed the file in its config; the resumed launch has the recipe's agent loop again.
    loops = str(tiny_run.work / "agent_loops.yaml")
    assert loops in tiny_run.first.stdout + tiny_run.first.stderr
    assert loops not in tiny_run.second.stdout + tiny_run.second.stderr


@pytest.fixture(scope="module")
def evaluations(tiny_run) -> dict[str, list[dict]]:
    """The last checkpoint evaluated greedily with budget forcing, on vLLM's CPU build and on transformers."""
    samples = {}
    for backend in ("vllm", "hf"):
        out = tiny_run.work / f"eval-{backend}"
        run_command(
            [
                sys.executable, "-m", "tinyzero.eval", f"model={tiny_run.outputs / 'global_step_3'}",
                f"data={tiny_run.data_folder() / 'test.parquet'}", f"output_dir={out}", f"backend={backend}",
                "dtype=float32", "limit=4", "max_new_tokens=24", "budget.thinking_tokens=[8,16]",
                "budget.num_extend=1", "budget.answer_tokens=8",
            ],
            tiny_run.work, timeout=400, env={"VLLM_CPU_KVCACHE_SPACE": "1"},
        )  # fmt: skip
        samples[backend] = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return samples


def test_eval_backends_agree_on_greedy_answers(evaluations):
    vllm, hf = evaluations["vllm"], evaluations["hf"]
    assert len(vllm) == len(hf) == 4 * 2  # 4 problems at thinking budgets 8 and 16
    key = lambda row: (row["budget"], row["problem"])  # noqa: E731
    assert [key(row) for row in vllm] == [key(row) for row in hf]
    for mine, theirs in zip(vllm, hf):
        assert mine["prompt"] == theirs["prompt"]
        assert mine["response"] == theirs["response"], key(mine)
    assert {row["budget"] for row in vllm} == {8, 16}
    # Budget forcing ran: a random model never closes its thinking, so the budget cut it and forced the answer.
    assert all(row["forced_answer"] and "</think>" in row["response"] for row in vllm)


def test_aha_reads_the_training_rollouts(tiny_run):
    out = tiny_run.work / "aha"
    run_command([sys.executable, "-m", "tinyzero.aha", str(tiny_run.outputs / "rollouts"), "--out", str(out), "--no-plots"],
                tiny_run.work, timeout=300)
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2", "3"]
    assert json.loads((out / "aha.json").read_text())
