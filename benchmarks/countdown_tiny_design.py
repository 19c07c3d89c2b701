"""A quick check of a countdown_tiny design before a verl run: plain single-threaded PyTorch, no
verl, no vLLM, so two designs can run side by side on a 2-core machine in about 10 minutes each.

    python benchmarks/countdown_tiny_design.py [--hidden 128 --layers 4 --heads 4] [--max-number 12 --max-target 50]
        [--test 400 --traces 700 --train 800] [--sft-steps 1000] [--rl-steps 80 --rl-lr 2e-4 --prompts 16 --n 8]

It builds the tiny model and tokenizer as the recipe does (tinyzero.models), draws the three problem
sets from data_gen (held out first, then the priming problems, then GRPO's: disjoint), fine-tunes on
direct (or --search) traces with the recipe's priming schedule (AdamW, warm-up then cosine, batch
32), then runs a plain GRPO loop: n sampled answers a prompt at temperature 1, the project's reward,
advantages normalised within each group, one policy-gradient update a step (no clipping or KL: one
update a step is on-policy). Held-out accuracy is greedy, as verl's validation. It prints the curve,
and pass@1 (temperature 1) and pass@8 of the primed model on 200 held-out problems with --passk.

This is a design probe, not the training loop: `python -m tinyzero.train +recipe=countdown_tiny`
runs verl's. docs/experiments/countdown_tiny.md has what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, Qwen2ForCausalLM

from data_gen.countdown import CountdownConfig
from data_gen.dataset import generate_problems
from data_gen.prompts import chat_prompt, countdown_question
from data_gen.traces import countdown_trace
from tinyzero.models import TinyModelConfig, build
from tinyzero.rewards import score_countdown


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--max-number", type=int, default=12)
    add("--max-target", type=int, default=50)
    add("--test", type=int, default=400, help="held-out problems")
    add("--traces", type=int, default=700, help="priming traces (their own problems)")
    add("--train", type=int, default=800, help="GRPO's problems")
    add("--hidden", type=int, default=128)
    add("--layers", type=int, default=4)
    add("--heads", type=int, default=4)
    add("--prompt-style", default="compact", choices=("compact", "base"))
    add("--search", type=float, default=0.0, help="share of search traces")
    add("--sft-steps", type=int, default=1000)
    add("--sft-lr", type=float, default=3e-3)
    add("--rl-steps", type=int, default=80)
    add("--rl-lr", type=float, default=2e-4)
    add("--prompts", type=int, default=16, help="prompts a GRPO step")
    add("--n", type=int, default=8, help="answers a prompt")
    add("--temperature", type=float, default=1.0,
        help="GRPO's sampling temperature; the update scores the same tempered policy (verl: rollout.temperature)")
    add("--no-std", action="store_true", help="advantages not divided by the group's spread (verl: algorithm.norm_adv_by_std_in_grpo=false)")
    add("--max-new", type=int, default=110, help="response tokens (a direct trace is about 80)")
    add("--eval-every", type=int, default=20)
    add("--passk", action="store_true", help="pass@1 and pass@8 of the primed model")
    add("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    start = time.time()
    config = CountdownConfig(min_count=3, max_count=3, max_number=args.max_number, max_target=args.max_target,
                             test_size=args.test, train_size=args.traces + args.train, difficulty="none")
    splits = generate_problems(config)
    test, primed_on, rl = splits["test"], splits["train"][: args.traces], splits["train"][args.traces :]

    def prompt(numbers, target) -> str:
        return chat_prompt(countdown_question(list(numbers), target, args.prompt_style), args.prompt_style)[0]["content"]

    folder = tempfile.mkdtemp(prefix="tiny-design-")
    build(folder, TinyModelConfig(hidden_size=args.hidden, num_layers=args.layers, num_attention_heads=args.heads,
                                  num_key_value_heads=1, seed=args.seed))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = Qwen2ForCausalLM.from_pretrained(folder, attn_implementation="sdpa", dtype=torch.float32)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id

    def log(text: str) -> None:
        print(f"[{time.time() - start:6.0f}s] {text}", flush=True)

    def padded(rows):
        """(ids, mask, labels) of (tokens, loss mask) rows, right-padded."""
        width = max(len(tokens) for tokens, _ in rows)
        ids = torch.full((len(rows), width), pad)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100)
        for i, (tokens, scored) in enumerate(rows):
            ids[i, : len(tokens)] = torch.tensor(tokens)
            mask[i, : len(tokens)] = 1
            labels[i, : len(tokens)] = torch.where(torch.tensor(scored) > 0, torch.tensor(tokens), -100)
        return ids, mask, labels

    @torch.no_grad()
    def generate(prompts, greedy: bool, n: int = 1, batch: int = 128, temperature: float = 1.0):
        model.eval()
        tokenizer.padding_side = "left"
        outputs = []
        expanded = [p for p in prompts for _ in range(n)]
        for begin in range(0, len(expanded), batch):
            inputs = tokenizer(expanded[begin : begin + batch], return_tensors="pt", padding=True)
            out = model.generate(**inputs, max_new_tokens=args.max_new, do_sample=not greedy, temperature=temperature,
                                 top_p=1.0, eos_token_id=eos, pad_token_id=pad)
            for row in out[:, inputs["input_ids"].shape[1] :].tolist():
                row = row[: row.index(eos) + 1] if eos in row else row
                while row and row[-1] == pad:
                    row.pop()
                outputs.append(row)
        return outputs

    def correct(output, problem) -> bool:
        return score_countdown(tokenizer.decode(output, skip_special_tokens=True), problem[1], list(problem[0])).correct

    def held_out(label: str) -> float:
        outputs = generate([prompt(p[0], p[1]) for p in test], greedy=True)
        accuracy = sum(correct(o, p) for o, p in zip(outputs, test)) / len(test)
        # A search trace writes "Try ..." for each attempt; a direct one never does.
        searching = sum("Try " in tokenizer.decode(o, skip_special_tokens=True) for o in outputs) / len(test)
        log(f"{label}: held-out greedy {accuracy:.1%} ({searching:.0%} of the answers search)")
        return accuracy

    # Priming: supervised traces, loss on the response only.
    examples = []
    for numbers, target, *_ in primed_on:
        made = countdown_trace(numbers, target, "search" if rng.random() < args.search else "direct", "base", rng)
        if made:
            prompt_ids = tokenizer(prompt(numbers, target))["input_ids"]
            response_ids = tokenizer(made[0])["input_ids"] + [eos]
            examples.append((prompt_ids + response_ids, [0] * len(prompt_ids) + [1] * len(response_ids)))
    log(f"{sum(p.numel() for p in model.parameters()):,} parameters; {len(examples)} traces, {len(test)} held out, {len(rl)} for GRPO")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.0)
    warmup = max(1.0, 0.05 * args.sft_steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.sft_steps) / max(args.sft_steps, 1))))
    order: list[int] = []
    for step in range(args.sft_steps):
        if len(order) < 32:
            order += rng.sample(range(len(examples)), len(examples))
        batch, order = order[:32], order[32:]
        ids, mask, labels = padded([examples[i] for i in batch])
        model.train()
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == args.sft_steps - 1:
            log(f"priming step {step}: loss {loss.item():.3f}")
    curve = [held_out("primed, step 0")]
    if args.passk:
        sample = test[:200]
        outputs = generate([prompt(p[0], p[1]) for p in sample], greedy=False, n=8)
        right = [correct(o, sample[i // 8]) for i, o in enumerate(outputs)]
        solved = [any(right[i * 8 : (i + 1) * 8]) for i in range(len(sample))]
        log(f"primed: pass@1 (temperature 1) {sum(right) / len(right):.1%}, pass@8 {sum(solved) / len(sample):.1%}")

    # GRPO.
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.rl_lr, weight_decay=0.0)
    queue: list[int] = []
    for step in range(1, args.rl_steps + 1):
        if len(queue) < args.prompts:
            queue += rng.sample(range(len(rl)), len(rl))
        batch, queue = [rl[i] for i in queue[: args.prompts]], queue[args.prompts :]
        prompts = [prompt(p[0], p[1]) for p in batch]
        outputs = generate(prompts, greedy=False, n=args.n, temperature=args.temperature)
        scores = torch.tensor([score_countdown(tokenizer.decode(o, skip_special_tokens=True), batch[i // args.n][1],
                                               list(batch[i // args.n][0])).score for i, o in enumerate(outputs)])
        groups = scores.view(args.prompts, args.n)
        spread = 1.0 if args.no_std else groups.std(1, keepdim=True) + 1e-6
        advantages = ((groups - groups.mean(1, keepdim=True)) / spread).view(-1)
        rows = []
        for i, output in enumerate(outputs):
            prompt_ids = tokenizer(prompts[i // args.n])["input_ids"]
            rows.append((prompt_ids + output, [0] * len(prompt_ids) + [1] * len(output)))
        ids, mask, labels = padded(rows)
        model.train()
        log_probs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[:, :-1] / args.temperature, -1)
        targets = labels[:, 1:]
        scored = targets != -100
        token_log_probs = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        loss = -(token_log_probs * advantages.unsqueeze(1) * scored).sum() / scored.sum()  # token-mean, as verl
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 10 == 0:
            searched = sum("Try " in tokenizer.decode(o, skip_special_tokens=True) for o in outputs) / len(outputs)
            log(f"GRPO step {step}: sampled right {(scores >= 1).float().mean():.1%}, searching {searched:.0%}")
        if step % args.eval_every == 0:
            curve.append(held_out(f"GRPO step {step}"))
    print("held-out greedy accuracy (%) at step 0 and every", args.eval_every, "steps:", json.dumps([round(100 * c, 1) for c in curve]))


if __name__ == "__main__":
    main()
