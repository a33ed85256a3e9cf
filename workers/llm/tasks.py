"""The LLM task: the session's trimmed history and the question in, a reply out.

The question and the history come from the job's text artifacts (``contracts.job_texts``),
and the reply goes into one (``reply_key``). The reply stays as the model wrote it (users
read it); the event names what is spoken of it too (``spoken_reply``, through the front
end of ``contracts.text``).
In a streamed job (``stream`` on the payload) each sentence of the reply is handed
on to its own TTS subtask as soon as the model has written it
(``workers.llm.stream.stream_reply``); a FAQ-cache answer is handed on the same way.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from contracts.artifacts import ArtifactStore
from contracts.events import TEXTS
from contracts.job_texts import JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings, get_settings
from contracts.text.spoken import to_spoken
from pipeline.app import app
from pipeline.runner import Outcome, run_stage
from pipeline.runtime import loaded
from pipeline.stages import STAGES
from workers.llm.base import LLMBackend, registry
from workers.llm.conversation import Prompt, cached_reply, faq_cache, finish_reply, prepare_prompt, question_of
from workers.llm.stream import stream_reply


def _reply(job: JobPayload) -> Outcome:
    settings = get_settings()
    backend = loaded(registry)
    texts = JobTexts(ArtifactStore(settings.artifact_dir), job.context_key)
    prompt = prepare_prompt(question_of(job, texts), texts.context, backend, settings)
    reply = cached_reply(prompt)
    from_cache = reply is not None
    if job.stream:
        return _streamed(job, texts, backend, prompt, reply, settings)
    language = job.language or job.detected_language
    if reply is None:
        reply = finish_reply(backend.reply(prompt.messages, prompt.options), prompt, settings, language)
    reply_key = texts.put(reply)
    named = {"reply": reply_key, "spoken_reply": texts.put(to_spoken(reply, language).text)}
    return Outcome(summary={TEXTS: named, "faq_cache": from_cache}, payload=job.with_outputs(reply_key=reply_key))


def _streamed(job: JobPayload, texts: JobTexts, backend: LLMBackend, prompt: Prompt, cached: str | None,
              settings: Settings) -> Outcome:
    deltas = iter([cached]) if cached is not None else backend.stream(prompt.messages, prompt.options)
    fallback = settings.llm.fallback_reply
    streamed = stream_reply(job, deltas, settings, fallback, texts, max_sentences=settings.llm.max_reply_sentences)
    if cached is None and prompt.faq_key is not None and not streamed.cancelled and streamed.text != fallback:
        faq_cache().put(prompt.faq_key, streamed.text)
    summary = {TEXTS: {"reply": texts.put(streamed.text), "spoken_reply": texts.put(streamed.spoken)},
               "segments": streamed.segments, "faq_cache": cached is not None}
    if streamed.cancelled:  # nothing to record, nothing to assemble
        return Outcome(summary={**summary, "cancelled": True})
    return Outcome(summary=summary, segments=streamed.segments)


@app.task(name=STAGES["llm"].task, bind=True)
def reply(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    return run_stage(self, "llm", payload, _reply)
