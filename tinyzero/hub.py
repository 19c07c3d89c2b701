"""The one rule for "is this a Hugging Face hub name": shared by training's model check and eval's
model resolution. Standard library only (a leaf module, like tinyzero.stats)."""

from __future__ import annotations

import re

# `Qwen/Qwen2.5-3B` (owner/name) or `gpt2` (a legacy name without owner): letters, digits, `_ . -`,
# at most one slash; never a path (no leading `/ . ~`, no white space, no backslash).
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_hub_name(model: str) -> bool:
    return bool(_HUB_NAME.match(str(model)))
