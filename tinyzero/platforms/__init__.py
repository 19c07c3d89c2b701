"""What verl 0.9.1 lacks for this project's machines.

`cpu`: a verl platform for machines without an accelerator, so verl's real training loop (FSDP
updates, vLLM rollouts through vLLM's CPU build) runs on any Linux x86-64 machine. verl loads it
through the `verl.plugins` entry point (pyproject.toml) at `import verl`, in every process;
verl chooses it only when no accelerator platform is available.
`verl_0_9_1`: the few fixes that verl offers no extension point for, guarded to that version.
"""
