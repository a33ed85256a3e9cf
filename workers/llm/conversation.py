"""From a job to a reply: the prompt window, the FAQ answer cache and the reply check.

The LLM task (and the sentence-streamed pipeline built on ``LLMBackend.stream``)
calls these in order: ``question_of`` reads the question (the transcript, or the
typed text of the job's context, ``contracts.job_texts``); ``prepare_prompt``
builds the messages (the session's persona or the configured system prompt, the
history trimmed to the token budget, the question); ``cached_reply`` answers a first-turn question from the
FAQ cache when that is allowed; ``finish_reply`` shapes the model's text
(``ReplySentences``), puts the configured fallback sentence in place of a reply
with nothing to say and stores FAQ answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from cache.faq import FaqCache, faq_key
from contracts.errors import PermanentError
from contracts.job_texts import JobContext, JobTexts
from contracts.payload import JobPayload, Turn
from contracts.settings import Settings, get_settings
from workers.llm.base import GenerationOptions, LLMBackend
from workers.llm.text import ReplySentences, build_messages, fit_to_budget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prompt:
    messages: list[Turn]
    options: GenerationOptions
    # Set when the reply may come from, and goes into, the FAQ cache: a first turn, deterministic sampling.
    faq_key: str | None = None


@lru_cache(maxsize=1)
def faq_cache() -> FaqCache:
    """One FAQ cache client (and connection pool) per worker process."""
    return FaqCache.from_settings(get_settings())


def question_of(job: JobPayload, texts: JobTexts) -> str:
    """The question of ``job``: its transcript, else the typed text."""
    question = texts.read(job.transcript_key) if job.transcript_key is not None else texts.context.text
    if not question or not question.strip():
        raise PermanentError("there is no question to answer", code="empty_text")
    return question


def prepare_prompt(question: str, context: JobContext, backend: LLMBackend, settings: Settings) -> Prompt:
    """The messages and options for the reply to ``question`` in the job's ``context`` (history, persona),
    with the history trimmed to ``llm.max_prompt_tokens``."""
    llm = settings.llm
    system_prompt = context.system_prompt if context.system_prompt is not None else llm.system_prompt
    messages = build_messages(system_prompt, context.history, question, llm.history_turns)
    messages = fit_to_budget(messages, llm.max_prompt_tokens, backend.count_tokens)
    options = GenerationOptions.from_settings(settings)
    key = None
    if llm.faq_cache_enabled and not context.history:  # a first turn: the question alone decides the reply
        key = faq_key(question, system_prompt, backend.identity,
                      {"max_new_tokens": options.max_new_tokens, "temperature": options.temperature,
                       "top_p": options.top_p, "stop": list(options.stop)})
    return Prompt(messages, options, key)


def cached_reply(prompt: Prompt) -> str | None:
    """The FAQ cache's reply for this prompt, if it may have one and has."""
    return faq_cache().get(prompt.faq_key) if prompt.faq_key is not None else None


def finish_reply(raw: str, prompt: Prompt, settings: Settings, language: str | None = None) -> str:
    """The reply as written (``ReplySentences``), or the fallback sentence when it says nothing."""
    sentences = ReplySentences(language, settings.llm.max_reply_sentences)
    sentences.feed(raw)
    sentences.finish()
    reply = sentences.text
    if not sentences.sentences:
        # A reply with nothing to say would give a silent video.
        log.info("the model's reply has nothing to say; using the fallback reply")
        return settings.llm.fallback_reply
    if prompt.faq_key is not None:
        faq_cache().put(prompt.faq_key, reply)
    return reply
