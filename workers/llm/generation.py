"""One batch of chat prompts through ``model.generate``, each row streamed on its own.

Prompts are left-padded to one width (a decoder-only model continues from the
right end) with an attention mask, and generated together with the KV cache on.
``generate`` hands every step's new tokens to a streamer; ``RowStreamer`` decodes
each row, sends its deltas to the row's request and marks the row done at the end
of its message, at a stop string or when its caller cancels. ``RowsDone`` reports
those rows to ``generate`` as stopped, so a finished row costs nothing more and
the batch ends with its last row.

Imports torch and transformers: the transformers backend imports this module
inside ``_load``.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch
from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from workers.llm.base import GenerationOptions
from workers.llm.batching import GenerationRequest, RequestStats
from workers.llm.deltas import ReplyText

# Mild, and over the reply only: names and facts from the history must stay cheap to repeat.
REPETITION_PENALTY = 1.1


class RowStreamer(BaseStreamer):
    """Receives each step's tokens for the whole batch; streams each row to its request."""

    def __init__(self, tokenizer: Any, batch: Sequence[GenerationRequest], end_ids: set[int],
                 width: int) -> None:
        self.tokenizer = tokenizer
        self.batch = list(batch)
        self.end_ids = end_ids
        self.width = width
        self.tokens: list[list[int]] = [[] for _ in batch]
        self.texts = [ReplyText(request.options.stop) for request in batch]
        self.done = [request.cancelled.is_set() for request in batch]
        self.first_token_at: list[float | None] = [None for _ in batch]
        self.started = time.perf_counter()
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt itself
            self._prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.done[row]:
                continue
            request = self.batch[row]
            if request.cancelled.is_set():
                self._finish(row)
                continue
            if self.first_token_at[row] is None:
                self.first_token_at[row] = time.perf_counter()
            if token in self.end_ids:
                self._finish(row)
                continue
            self.tokens[row].append(token)
            text = self.texts[row]
            request.emit(text.update(self._decode(row)))
            if text.stopped:
                self._finish(row)

    def end(self) -> None:
        for row in range(len(self.batch)):
            if not self.done[row]:
                self._finish(row)

    def _decode(self, row: int) -> str:
        return str(self.tokenizer.decode(self.tokens[row], skip_special_tokens=True))

    def _finish(self, row: int) -> None:
        self.done[row] = True
        request = self.batch[row]
        request.emit(self.texts[row].finish(self._decode(row)))
        first = self.first_token_at[row]
        request.finish(RequestStats(
            prompt_tokens=len(request.prompt), new_tokens=len(self.tokens[row]),
            seconds=time.perf_counter() - self.started,
            first_token_seconds=None if first is None else first - self.started,
            batch_size=len(self.batch),
        ))


class RowsDone(StoppingCriteria):
    """Tells ``generate`` which rows the streamer has finished."""

    def __init__(self, streamer: RowStreamer) -> None:
        self.streamer = streamer

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        return torch.tensor(self.streamer.done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def end_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token IDs that end an assistant message (the generation config's EOS, and the tokenizer's)."""
    ids = model.generation_config.eos_token_id
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        found.add(int(tokenizer.eos_token_id))
    return found


def sampling_kwargs(options: GenerationOptions, prompt_width: int, pad_id: int) -> dict[str, Any]:
    penalty = RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY, prompt_ignore_length=prompt_width)
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "use_cache": True,
        "logits_processor": LogitsProcessorList([penalty]),
        "pad_token_id": pad_id,
    }
    if options.temperature > 0:
        kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
    else:
        kwargs.update(do_sample=False)
    return kwargs


def generate_batch(model: Any, tokenizer: Any, batch: Sequence[GenerationRequest]) -> None:
    """Generate every request of ``batch`` (all with the same options) together, streaming each row."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(request.prompt) for request in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, request in enumerate(batch):
        size = len(request.prompt)
        input_ids[row, width - size:] = torch.tensor(request.prompt, dtype=torch.long)
        attention[row, width - size:] = 1
    streamer = RowStreamer(tokenizer, batch, end_token_ids(model, tokenizer), width)
    with torch.inference_mode():
        model.generate(
            input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device),
            streamer=streamer, stopping_criteria=StoppingCriteriaList([RowsDone(streamer)]),
            **sampling_kwargs(batch[0].options, width, pad_id),
        )
    streamer.end()
