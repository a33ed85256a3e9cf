"""LLM backend: a causal language model from a local transformers folder.

The default is the embedded SmolLM2-135M-Instruct, converted once from its GGUF
file by ``talkfarm-admin models prepare`` (see ``workers.llm.prepare``). Any
transformers chat model folder works: ``settings.llm.model`` is an absolute path
or a folder name under ``settings.model_dir``. Nothing is fetched from a hub.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

from workers.errors import ModelMissingError, PermanentError, TransientError
from workers.llm.base import GenerationOptions, LLMBackend, LLMCapabilities, registry
from workers.payload import Turn
from workers.settings import Settings

logger = logging.getLogger(__name__)

PREPARE_COMMAND = "talkfarm-admin models prepare"
# Mild, and over the reply only: names and facts from the history must stay cheap to repeat.
REPETITION_PENALTY = 1.1


def import_llm_libraries() -> tuple[ModuleType, ModuleType]:
    """Import torch and transformers, or say which extra installs them.

    Sets ``HF_HUB_OFFLINE`` first (unless the operator set it): models load from
    local folders only, and the machines reach no hub.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch
        import transformers
    except ImportError as e:
        raise PermanentError(
            f"the transformers LLM backend needs the extra talkfarm[llm] "
            f"(pip install torch==2.13.0 'talkfarm[llm]'): {e}",
            code="missing_dependency",
        ) from e
    return torch, transformers


def model_path(settings: Settings) -> Path:
    """The model folder named by ``settings.llm.model``: an absolute path or a name under model_dir."""
    name = Path(settings.llm.model).expanduser()
    return name if name.is_absolute() else settings.model_dir / name


def is_model_folder(path: Path) -> bool:
    """Whether ``path`` holds a transformers model: a config, weights and a tokenizer."""
    return (
        (path / "config.json").is_file()
        and any(path.glob("*.safetensors"))
        and (path / "tokenizer_config.json").is_file()
    )


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string."""
    positions = [text.find(s) for s in stop if s]
    found = [p for p in positions if p >= 0]
    return text[: min(found)] if found else text


@dataclass(frozen=True)
class GenerationStats:
    """Sizes and time of the last ``generate`` call, for logs and benchmarks."""

    prompt_tokens: int
    new_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


@registry.register("transformers")
class TransformersLLM(LLMBackend):
    """A local transformers chat model; greedy decoding when temperature is 0."""

    capabilities = LLMCapabilities(streaming=False, batching=False, gpu=True, context_tokens=8192)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = model_path(settings)
        self._torch: Any = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._context_tokens = self.capabilities.context_tokens
        self.last_stats: GenerationStats | None = None
        # One generate() at a time per model, whichever worker pool calls it.
        self._generate_lock = threading.Lock()

    def check(self) -> None:
        if not is_model_folder(self.path):
            raise ModelMissingError(
                f"LLM model folder {self.path} is missing or incomplete "
                f"(needs config.json, *.safetensors, tokenizer files); run `{PREPARE_COMMAND}`"
            )

    def _device_map(self, torch: Any) -> str | None:
        device = self.settings.llm.device
        if device not in ("cpu", "cuda", "auto"):
            raise PermanentError(f"unknown llm device {device!r}; use cpu, cuda or auto", code="llm_device")
        cuda = torch.cuda.is_available()
        if device == "cuda" and not cuda:
            raise PermanentError("llm device is cuda but no CUDA device is available", code="llm_device")
        return "auto" if device != "cpu" and cuda else None

    def _load(self) -> None:
        torch, transformers = import_llm_libraries()
        self.check()
        torch.set_num_threads(self.settings.llm.torch_threads)  # process-wide: one model per worker
        device_map = self._device_map(torch)
        dtype = torch.float32
        if device_map is not None:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        start = time.perf_counter()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                self.path, local_files_only=True, dtype=dtype, device_map=device_map
            )
        except OSError as e:
            raise ModelMissingError(
                f"cannot load the LLM from {self.path}: {e}; run `{PREPARE_COMMAND}`"
            ) from e
        except (ValueError, RuntimeError, KeyError) as e:
            raise PermanentError(f"cannot load the LLM from {self.path}: {e}", code="llm_load") from e
        if not tokenizer.chat_template:
            raise PermanentError(
                f"the tokenizer in {self.path} has no chat template; run `{PREPARE_COMMAND} --force`",
                code="llm_load",
            )
        model.eval()
        self._context_tokens = int(getattr(model.config, "max_position_embeddings", self._context_tokens))
        self._torch, self._tokenizer, self._model = torch, tokenizer, model
        logger.info("loaded LLM %s on %s in %.2f s", self.path, model.device, time.perf_counter() - start)

    def _unload(self) -> None:
        cuda = self._model is not None and self._model.device.type == "cuda"
        self._tokenizer = self._model = None
        gc.collect()
        if cuda:
            self._torch.cuda.empty_cache()

    def _generate_kwargs(self, options: GenerationOptions, prompt_tokens: int) -> dict[str, Any]:
        from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

        penalty = RepetitionPenaltyLogitsProcessor(REPETITION_PENALTY, prompt_ignore_length=prompt_tokens)
        pad = self._tokenizer.pad_token_id
        kwargs: dict[str, Any] = {
            "max_new_tokens": options.max_new_tokens,
            "use_cache": True,
            "logits_processor": LogitsProcessorList([penalty]),
            "pad_token_id": pad if pad is not None else self._tokenizer.eos_token_id,
        }
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature, top_p=options.top_p)
        else:
            kwargs.update(do_sample=False)
        if options.stop:
            kwargs.update(stop_strings=list(options.stop), tokenizer=self._tokenizer)
        return kwargs

    def _reply(self, messages: Sequence[Turn], options: GenerationOptions) -> str:
        if options.max_new_tokens < 1:
            raise PermanentError("max_new_tokens must be at least 1", code="llm_options")
        from jinja2 import TemplateError

        chat = [{"role": turn.role, "content": turn.content} for turn in messages]
        try:
            inputs = self._tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
        except (TemplateError, ValueError) as e:
            raise PermanentError(f"the chat template rejected the messages: {e}", code="llm_prompt") from e
        prompt_tokens = int(inputs["input_ids"].shape[-1])
        if prompt_tokens + options.max_new_tokens > self._context_tokens:
            raise PermanentError(
                f"prompt of {prompt_tokens} tokens leaves no room for {options.max_new_tokens} new tokens "
                f"in a context of {self._context_tokens}",
                code="llm_context_too_long",
            )
        inputs = inputs.to(self._model.device)
        kwargs = self._generate_kwargs(options, prompt_tokens)
        start = time.perf_counter()
        try:
            with self._generate_lock, self._torch.inference_mode():
                output = self._model.generate(**inputs, **kwargs)
        except self._torch.OutOfMemoryError as e:
            raise TransientError(f"LLM ran out of device memory: {e}") from e
        new_tokens = output[0, prompt_tokens:]
        self.last_stats = GenerationStats(prompt_tokens, len(new_tokens), time.perf_counter() - start)
        logger.debug("LLM %s", self.last_stats)
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        return cut_at_stop(text, options.stop).strip()
