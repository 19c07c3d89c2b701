"""Shared fixtures. No `__init__.py` here: verl's wheel installs a top-level `tests` package."""

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Qwen2 model and tokenizer (ChatML template) in a local Hugging Face folder."""
    from tinyzero.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"))
