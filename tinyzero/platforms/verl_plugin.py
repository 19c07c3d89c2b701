"""verl's way into tinyzero: the `verl.plugins` entry point (pyproject.toml), which `import verl`
loads in every verl process (verl/__init__.py 55-75; an exception there is only logged at debug
level, so `python -m tinyzero.train` checks that this ran, here and on every node of a cluster:
tinyzero.train.cluster). Registers the CPU platform and installs the verl 0.9.1 fixes; where verl
will choose the CPU platform, also the CPU fixes and the vLLM rollout for vLLM's CPU build."""

from tinyzero.platforms import cpu, verl_0_9_1

ON_CPU = cpu.cpu_platform_chosen()
verl_0_9_1.install(cpu_platform=ON_CPU)
if ON_CPU:
    cpu.register_rollout()
