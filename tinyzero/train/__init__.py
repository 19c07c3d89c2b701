"""Training: the Hydra app `python -m tinyzero.train +recipe=NAME` on verl 0.9.1.

- `app`: the launch story, top to bottom (compose, check, generate data, plan, hand over to verl).
- `checks`: the pre-launch checks (keys, names, batch arithmetic, GPUs, data files).
- `memory`: the model's shape and the per-GPU memory estimate.
- `conf/train.yaml`: the primary config, tinyzero's defaults on top of verl's ppo_trainer.
Recipes are composed by `tinyzero.recipe`, which eval shares. Importing this package loads nothing
heavy and registers nothing with Hydra.
"""
