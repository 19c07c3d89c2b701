"""Chat templates: how a dataset row's `prompt` (always a chat list) becomes the model's input text.

One home for this, used by training (verl's `custom_chat_template`) and evaluation alike.
- `base` (and `compact`) prompts are plain text written for a base model: the template passes the messages'
  content through unchanged, so the model sees exactly the text data_gen wrote, and the
  generation prompt adds nothing (the text already ends by opening the think tag).
- `instruct` prompts are chat messages for an instruct model: its own chat template applies.
"""

from __future__ import annotations

from data_gen.prompts import PROMPT_STYLES, TEXT_STYLES  # the styles data_gen writes prompts in

# Jinja, as Hugging Face tokenizers and verl expect. No BOS, no role markers, no generation
# prompt: the content is the whole input. An assistant message (a supervised trace, data_gen.traces)
# ends with the tokenizer's EOS, where RL generation stops: priming teaches the model to stop after
# </answer>. Prompts have no assistant message, so RL and eval see the content alone.
BASE_CHAT_TEMPLATE = (
    "{%- for message in messages -%}{{ message['content'] }}"
    "{%- if message['role'] == 'assistant' -%}{{ eos_token }}{%- endif -%}{%- endfor -%}"
)


def chat_template_for(prompt_style: str) -> str | None:
    """The template to force on the tokenizer for a prompt style; None keeps the model's own."""
    if prompt_style in TEXT_STYLES:
        return BASE_CHAT_TEMPLATE
    if prompt_style == "instruct":
        return None
    raise ValueError(f"unknown prompt_style {prompt_style!r}; use one of {', '.join(PROMPT_STYLES)}")
