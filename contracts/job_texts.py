"""A job's texts as artifacts: what messages and events carry instead of the user's and the model's words.

Stage payloads (``contracts.payload``) and worker events (``contracts.events``) carry IDs
and artifact keys only, never user text: RabbitMQ shows message bodies in its management
UI and keeps them on disk, and the results Redis keeps what tasks return. Every text of a
job is a small JSON artifact instead:

* the coordinator writes the job's **context** at submit (``JobContext``: the typed
  text, the session history, the persona's system prompt, and a random salt) and puts
  its key on the payload (``context_key``); a streamed ``speak`` job's sentences too;
* each stage writes the texts it makes (the transcript, the reply, each streamed
  sentence, what was spoken) with ``JobTexts.put`` and hands their keys on
  (``transcript_key``, ``reply_key``, ``segment_text_key``); its events name them
  under ``texts`` (``contracts.events.TEXTS``);
* the coordinator reads them back when it applies an event
  (``contracts.events.resolve_texts``), so the job store, the API and the event stream
  show the texts as before.

A text document is ``{"salt": …, "text": …}``. Its key is still the SHA-256 of its bytes,
so a redone task writes the same file; the salt, which only the context artifact holds,
makes the key of a short text unguessable: the bare hash of "yes" is a dictionary lookup
away from the word. A job's texts are its own files, which erasure removes with it.

``upgrade_legacy_payload`` accepts, for one version, a payload of an older coordinator
or worker that still carries the texts themselves (see docs/decisions.md).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts.artifacts import ArtifactStore
from contracts.payload import JobPayload, Turn

TEXT_EXT = "json"


class JobContext(BaseModel):
    """What the LLM and TTS stages read of the request: written once per job by the coordinator."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    salt: str  # random, never in a message: the keys of the job's texts cannot be guessed from their words
    text: str | None = None  # the typed question (chat) or the text to speak (speak)
    history: list[Turn] = Field(default_factory=list)
    system_prompt: str | None = None  # the session's persona; None: the llm.system_prompt setting

    @classmethod
    def new(cls, text: str | None = None, history: list[Turn] | None = None,
            system_prompt: str | None = None) -> JobContext:
        return cls(salt=secrets.token_hex(16), text=text, history=history or [], system_prompt=system_prompt)

    def to_bytes(self) -> bytes:
        return _dumps(self.model_dump(mode="json"))


def text_document(salt: str, text: str) -> bytes:
    """The bytes of a text artifact of the job whose context has ``salt``."""
    return _dumps({"salt": salt, "text": text})


class JobTexts:
    """Reading and writing one job's texts in the artifact store (the context is read once, when needed).

    A job without a context (``lipsync``, which has no text) writes its texts unsalted.
    """

    def __init__(self, store: ArtifactStore, context_key: str | None, context: JobContext | None = None) -> None:
        self.store = store
        self.context_key = context_key
        self._context = context  # the context stored under ``context_key``, when the caller has it

    @staticmethod
    def write_context(store: ArtifactStore, context: JobContext) -> str:
        """Store ``context``; its key (``context_key`` on the payload)."""
        return store.put_bytes(context.to_bytes(), TEXT_EXT).key

    @property
    def context(self) -> JobContext:
        if self._context is None:
            if self.context_key is None:
                self._context = JobContext(salt="")
            else:
                self._context = JobContext.model_validate_json(self.store.read_bytes(self.context_key))
        return self._context

    def put(self, text: str) -> str:
        """Store one text of the job; its key."""
        return self.store.put_bytes(text_document(self.context.salt, text), TEXT_EXT).key

    def read(self, key: str | None) -> str | None:
        """The text stored under ``key`` (None for None)."""
        return None if key is None else read_text(self.store, key)

    def words(self, job: JobPayload) -> str | None:
        """What the job's speech says: a segment's sentence, the reply, or the typed text (None in lipsync)."""
        if job.segment is not None:
            return self.read(job.segment_text_key)
        if job.reply_key is not None:
            return self.read(job.reply_key)
        return self.context.text


def read_text(store: ArtifactStore, key: str) -> str:
    """The text of a text artifact (raises ``ArtifactNotFound`` when it is not there)."""
    document = json.loads(store.read_bytes(key))
    text = document.get("text") if isinstance(document, dict) else None
    if not isinstance(text, str):
        raise ValueError(f"{key} is not a text artifact")
    return text


# Texts that payloads of the previous version carried themselves, and where their artifacts go now.
_LEGACY_TEXTS = {"transcript": "transcript_key", "reply": "reply_key", "segment_text": "segment_text_key"}
_LEGACY_CONTEXT = ("text", "history", "system_prompt")


def upgrade_legacy_payload(raw: Any, store: ArtifactStore) -> Any:
    """``raw`` with the texts of an older payload stored as artifacts and replaced by their keys.

    A payload without them is returned as it is (nothing is read or written). Accepted for one
    version, so that messages published before an upgrade still run.
    """
    if not isinstance(raw, dict) or not any(name in raw for name in (*_LEGACY_CONTEXT, *_LEGACY_TEXTS)):
        return raw
    upgraded = {k: v for k, v in raw.items() if k not in _LEGACY_CONTEXT and k not in _LEGACY_TEXTS}
    context = JobContext.new(raw.get("text"), [Turn.model_validate(t) for t in raw.get("history") or []],
                             raw.get("system_prompt"))
    upgraded["context_key"] = JobTexts.write_context(store, context)
    texts = JobTexts(store, upgraded["context_key"])
    for name, key_field in _LEGACY_TEXTS.items():
        if raw.get(name) is not None:
            upgraded[key_field] = texts.put(raw[name])
    return upgraded


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
