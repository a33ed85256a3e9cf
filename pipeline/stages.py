"""What a stage is: one table that the Celery app, launch, the runtime, admin and the cache keys read.

Each ``StageSpec`` names a stage, its Celery task, the package that implements it
and the settings that shape its output. From the package follow, by convention,
its backend registry (``<package>.base.registry``), its model preparation
(``<package>.prepare.prepare``) and its task module (``<package>.tasks``); these are
imported by name, only in the processes that run or prepare the stage, so the
table itself is cheap to import (the coordinator reads it without loading any
stage). The queue of a stage is named after it (``settings.queue_name(stage)``);
a task's ID is ``<job>.<verb>[.<segment>]``.

``offer`` is what a stage's workers serve (backends, their versions, the shaping
settings, digested): workers publish it when they start (``pipeline.catalog``) and
the coordinator puts the digests into every request's cache key.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, cast

from cache.keys import content_hash
from contracts.catalog import StageOffer
from contracts.payload import Stage
from contracts.settings import Settings

if TYPE_CHECKING:
    from pipeline.registry import ModelLifecycle, Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageSpec:
    name: Stage
    task: str  # the Celery task name
    package: str  # the stage's package: base.py (registry), prepare.py, tasks.py
    # Settings of the stage (dotted for nested ones) that shape its output: with the backends' versions,
    # part of every cache key of the videos the stage takes part in.
    shaping: tuple[str, ...] = ()
    # "module:function" adding to the stage's offer (the TTS stage's voices), called with the settings.
    offer_extras: str | None = None

    @property
    def queue(self) -> str:
        """The routing key of the stage's queue; ``settings.queue_name(spec.queue)`` is its name."""
        return self.name

    @property
    def tasks_module(self) -> str:
        return f"{self.package}.tasks"

    def registry(self) -> Registry[ModelLifecycle]:
        module = importlib.import_module(f"{self.package}.base")
        return cast("Registry[ModelLifecycle]", module.registry)

    def prepare(self, settings: Settings, force: bool = False) -> list[Path]:
        """Prepare the stage's embedded models under ``settings.model_dir`` (offline)."""
        prepared: list[Path] = importlib.import_module(f"{self.package}.prepare").prepare(settings, force=force)
        return prepared

    def offer(self, settings: Settings) -> StageOffer:
        """What a worker of this stage serves under ``settings``: its backends' versions and shaping settings."""
        registry = self.registry()
        backends = {name: str(getattr(registry.get(name), "version", "1"))
                    for name in settings.stage(self.name).backend_names()}
        shaping = {field: _setting(settings, f"{self.name}.{field}") for field in self.shaping}
        extras: dict[str, Any] = {}
        if self.offer_extras is not None:
            module, function = self.offer_extras.split(":")
            extras = getattr(importlib.import_module(module), function)(settings)
        digest = content_hash("offer", self.name, backends, shaping,
                              {k: v for k, v in extras.items() if k != "voices"})
        return StageOffer(stage=self.name, digest=digest, backends=backends, shaping=shaping, **extras)


@dataclass(frozen=True)
class TaskSpec:
    """A task that is not a stage of its own: it runs on ``stage``'s queue under its limits."""

    task: str
    stage: Stage
    verb: str  # its part of the task ID


def _setting(settings: Settings, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


STAGES: dict[str, StageSpec] = {spec.name: spec for spec in (
    StageSpec("asr", "talkfarm.asr.transcribe", "workers.asr",
              shaping=("model", "beam_size")),
    StageSpec("llm", "talkfarm.llm.reply", "workers.llm",
              shaping=("model", "max_new_tokens", "temperature", "top_p", "system_prompt", "stop",
                       "max_prompt_tokens", "max_reply_sentences", "fallback_reply", "openai.base_url",
                       "openai.model")),
    StageSpec("tts", "talkfarm.tts.synthesize", "workers.tts",
              shaping=("voice", "sample_rate", "loudness_dbfs", "peak_dbfs", "sentence_pause_seconds"),
              offer_extras="workers.tts.voices:offer_extras"),
    StageSpec("animation", "talkfarm.animation.render", "workers.animation",
              shaping=("fps", "max_side")),
)}
STAGE_NAMES: tuple[Stage, ...] = tuple(STAGES)  # type: ignore[arg-type]

# Joins a streamed job's segments into its final MP4, on the animation queue.
ASSEMBLE = TaskSpec("talkfarm.animation.assemble", "animation", "assemble")


def spec_of_task(task: str) -> StageSpec | TaskSpec:
    """The spec of a task name (a stage task or ``ASSEMBLE``)."""
    specs: list[StageSpec | TaskSpec] = [*STAGES.values(), ASSEMBLE]
    for spec in specs:
        if spec.task == task:
            return spec
    raise KeyError(task)


def prepare_models(settings: Settings, stages: Iterable[str] = STAGE_NAMES,
                   force: bool = False) -> dict[str, list[Path]]:
    """Prepare the embedded models of ``stages`` (``talkfarm-admin models prepare``)."""
    prepared: dict[str, list[Path]] = {}
    for stage in stages:
        start = time.perf_counter()
        prepared[stage] = STAGES[stage].prepare(settings, force=force)
        log.info("%s models ready in %.1f s", stage, time.perf_counter() - start)
    return prepared


def job_deadline_seconds(settings: Settings, plan: Iterable[str], stream: bool) -> float | None:
    """How long a job of ``plan`` may take before the sweeper fails it with ``timed_out``: its stages' hard
    limits added up (a streamed reply's segments and assembly once more), plus ``deadline_slack_seconds``."""
    slack = settings.reliability.deadline_slack_seconds
    if slack <= 0:
        return None
    stages = list(plan)
    seconds = sum(settings.stage(stage).hard_seconds for stage in stages)
    if stream:
        seconds += settings.tts.hard_seconds + 2 * settings.animation.hard_seconds
    return seconds + slack
