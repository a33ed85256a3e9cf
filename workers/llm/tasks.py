"""The LLM task: the session's trimmed history and the question in, a speakable reply out."""

from __future__ import annotations

from typing import Any

from celery import Task

from workers.celery_app import TASK_NAMES, app
from workers.errors import PermanentError
from workers.llm.base import GenerationOptions
from workers.llm.text import build_messages, clean_reply
from workers.payload import JobPayload
from workers.runtime import backend_for
from workers.settings import get_settings
from workers.stage import run_stage


def _reply(job: JobPayload) -> tuple[JobPayload, dict[str, Any]]:
    settings = get_settings().llm
    question = job.transcript if job.transcript is not None else job.text
    if not question or not question.strip():
        raise PermanentError("there is no question to answer", code="empty_text")
    messages = build_messages(settings.system_prompt, job.history, question, settings.history_turns)
    options = GenerationOptions(
        max_new_tokens=settings.max_new_tokens, temperature=settings.temperature, top_p=settings.top_p
    )
    raw = backend_for("llm").reply(messages, options)
    # A reply with nothing speakable left would give a silent video.
    reply = clean_reply(raw) or settings.fallback_reply
    return job.with_outputs(reply=reply), {"reply": reply}


@app.task(name=TASK_NAMES["llm"], bind=True)
def reply(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "llm", payload, _reply)
