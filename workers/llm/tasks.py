"""The LLM task: the session's trimmed history and the question in, a speakable reply out.

In a streamed job (``stream`` on the payload) each sentence of the reply is handed
on to its own TTS subtask as soon as the model has written it
(``workers.streaming.stream_reply``); a FAQ-cache answer is handed on the same way.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from workers.celery_app import TASK_NAMES, app
from workers.llm.base import LLMBackend
from workers.llm.conversation import Prompt, cached_reply, faq_cache, finish_reply, prepare_prompt
from workers.payload import JobPayload
from workers.runtime import backend_for
from workers.settings import Settings, get_settings
from workers.stage import HandOn, run_stage
from workers.streaming import stream_reply


def _reply(job: JobPayload) -> tuple[JobPayload | HandOn | None, dict[str, Any]]:
    settings = get_settings()
    backend: LLMBackend = backend_for("llm")
    prompt = prepare_prompt(job, backend, settings)
    reply = cached_reply(prompt)
    from_cache = reply is not None
    if job.stream:
        return _streamed(job, backend, prompt, reply, settings)
    if reply is None:
        reply = finish_reply(backend.reply(prompt.messages, prompt.options), prompt, settings)
    return job.with_outputs(reply=reply), {"reply": reply, "faq_cache": from_cache}


def _streamed(job: JobPayload, backend: LLMBackend, prompt: Prompt, cached: str | None,
              settings: Settings) -> tuple[HandOn | None, dict[str, Any]]:
    deltas = iter([cached]) if cached is not None else backend.stream(prompt.messages, prompt.options)
    fallback = settings.llm.fallback_reply
    then, summary = stream_reply(job, deltas, settings, fallback, max_sentences=settings.llm.max_reply_sentences)
    if cached is None and prompt.faq_key is not None and not summary.get("cancelled") \
            and summary["reply"] != fallback:
        faq_cache().put(prompt.faq_key, summary["reply"])
    return then, {**summary, "faq_cache": cached is not None}


@app.task(name=TASK_NAMES["llm"], bind=True)
def reply(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "llm", payload, _reply)
