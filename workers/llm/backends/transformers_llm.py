"""LLM backend: a causal language model from a local transformers folder.

The default is the embedded SmolLM2-135M-Instruct, converted once from its GGUF
file by ``talkfarm-admin models prepare`` (see ``workers.llm.prepare``). Any
transformers chat model folder works: ``settings.llm.model`` is an absolute path
or a folder name under ``settings.model_dir``. Nothing is fetched from a hub.

Generation runs in one thread per process (``workers.llm.batching``): requests
that wait together are generated as one left-padded batch when
``llm.max_batch_size`` is above 1, and every request streams its own deltas.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Sequence

from contracts.errors import ModelMissingError, PermanentError, TransientError
from contracts.payload import Turn
from contracts.settings import Settings
from workers.llm.base import GenerationOptions, LLMBackend, LLMCapabilities, registry
from workers.llm.batching import Batcher, GenerationRequest, RequestStats

logger = logging.getLogger(__name__)

PREPARE_COMMAND = "talkfarm-admin models prepare"


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


_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


@registry.register("transformers")
class TransformersLLM(LLMBackend):
    """A local transformers chat model; greedy decoding when temperature is 0."""

    capabilities = LLMCapabilities(streaming=True, batching=True, gpu=True, context_tokens=8192)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.path = model_path(settings)
        self._torch: Any = None
        self._tokenizer: Any = None
        self._model: Any = None
        self._generate_batch: Any = None
        self._context_tokens = self.capabilities.context_tokens
        self._local = threading.local()
        llm = settings.llm
        self.batcher = Batcher(self._run_batch, max(1, llm.max_batch_size), llm.batch_window_ms / 1000)

    @property
    def last_stats(self) -> RequestStats | None:
        """Sizes and times of the last request that the calling thread completed."""
        stats: RequestStats | None = getattr(self._local, "stats", None)
        return stats

    def check(self) -> None:
        if not is_model_folder(self.path):
            raise ModelMissingError(
                f"LLM model folder {self.path} is missing or incomplete "
                f"(needs config.json, *.safetensors, tokenizer files); run `{PREPARE_COMMAND}`"
            )
        # transformers reports a file it may not read as missing: say what is wrong before it does.
        unreadable = sorted(p.name for p in self.path.iterdir() if p.is_file() and not os.access(p, os.R_OK))
        if unreadable:
            raise PermanentError(
                f"LLM model files in {self.path} exist but uid {os.getuid()} cannot read them: "
                f"{', '.join(unreadable)}; make them readable (chmod a+r) or run `{PREPARE_COMMAND} --force`",
                code="model_unreadable",
            )

    def _device_map(self, torch: Any) -> str | None:
        device = self.settings.llm.device
        if device not in ("cpu", "cuda", "auto"):
            raise PermanentError(f"unknown llm device {device!r}; use cpu, cuda or auto", code="llm_device")
        cuda = torch.cuda.is_available()
        if device == "cuda" and not cuda:
            raise PermanentError("llm device is cuda but no CUDA device is available", code="llm_device")
        return "auto" if device != "cpu" and cuda else None

    def _dtype(self, torch: Any, on_gpu: bool) -> Any:
        name = self.settings.llm.dtype
        if name == "auto":
            if not on_gpu:
                return torch.float32
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if name not in _DTYPES:
            raise PermanentError(f"unknown llm dtype {name!r}; use auto, {', '.join(_DTYPES)}", code="llm_dtype")
        return getattr(torch, _DTYPES[name])

    def _load(self) -> None:
        torch, transformers = import_llm_libraries()
        self.check()
        torch.set_num_threads(self.settings.llm.torch_threads)  # process-wide: one model per worker
        device_map = self._device_map(torch)
        dtype = self._dtype(torch, device_map is not None)
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
        from workers.llm.generation import generate_batch

        model.eval()
        self._context_tokens = int(getattr(model.config, "max_position_embeddings", self._context_tokens))
        self._torch, self._tokenizer, self._model = torch, tokenizer, model
        self._generate_batch = generate_batch
        logger.info("loaded LLM %s on %s (%s) in %.2f s; batches of up to %d", self.path, model.device,
                    dtype, time.perf_counter() - start, self.batcher.max_batch)

    def _unload(self) -> None:
        self.batcher.close()
        cuda = self._model is not None and self._model.device.type == "cuda"
        self._tokenizer = self._model = None
        gc.collect()
        if cuda:
            self._torch.cuda.empty_cache()

    def _prompt(self, messages: Sequence[Turn]) -> list[int]:
        """The chat template applied to ``messages``, ending with the assistant's turn, as token IDs."""
        from jinja2 import TemplateError

        chat = [{"role": turn.role, "content": turn.content} for turn in messages]
        try:
            encoded = self._tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, tokenize=True, return_dict=True
            )
        except (TemplateError, ValueError) as e:
            raise PermanentError(f"the chat template rejected the messages: {e}", code="llm_prompt") from e
        return [int(token) for token in encoded["input_ids"]]

    def count_tokens(self, messages: Sequence[Turn]) -> int:
        self.load()
        return len(self._prompt(messages))

    def _stream(self, messages: Sequence[Turn], options: GenerationOptions) -> Iterator[str]:
        if options.max_new_tokens < 1:
            raise PermanentError("max_new_tokens must be at least 1", code="llm_options")
        prompt = self._prompt(messages)
        if len(prompt) + options.max_new_tokens > self._context_tokens:
            raise PermanentError(
                f"prompt of {len(prompt)} tokens leaves no room for {options.max_new_tokens} new tokens "
                f"in a context of {self._context_tokens}",
                code="llm_context_too_long",
            )
        request = self.batcher.submit(GenerationRequest(prompt, options))
        yield from request.deltas(timeout=self.settings.llm.hard_seconds)
        self._local.stats = request.stats
        logger.debug("LLM %s", request.stats)

    def _run_batch(self, batch: list[GenerationRequest]) -> None:
        try:
            self._generate_batch(self._model, self._tokenizer, batch)
        except self._torch.OutOfMemoryError as e:
            raise TransientError(f"LLM ran out of device memory on a batch of {len(batch)}: {e}") from e
