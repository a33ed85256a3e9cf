"""Deleting what a user owns: a session with its jobs, or an avatar, and every file and cached render of them.

``DELETE /v1/sessions/{id}`` removes the session's jobs, their events (transcripts
and replies are in the rows and the events), and the artifacts they name: the
uploaded photos and audio, the speech, the segments, the videos, and the text
artifacts (``contracts.job_texts``: the job's context and sentences, which its
``dispatch`` names; the transcript, reply and spoken texts, which its events name
under ``texts``). ``DELETE
/v1/avatars/{id}`` removes the avatar and its photo. A file goes only if nothing
that remains names it (content is stored once, whoever uploaded it); its cache
entries go with it: the request's video, the renders (``render_key``) and the
transcript (``transcript_cache_key``) recorded in the events, and the prepared
portrait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterator

from cache.store import Cache
from contracts.artifacts import ArtifactStore, is_key
from coordinator.store.repo import JobStore

log = logging.getLogger(__name__)
_CACHE_FIELDS = {"render_key": "video", "segment_render_key": "video", "transcript_cache_key": "asr",
                 "segment_transcript_cache_key": "asr"}


@dataclass(frozen=True)
class Erased:
    jobs: int
    files: int
    cache_entries: int


def _keys_in(value: Any) -> Iterator[str]:
    """Every artifact key in a JSON value, however deep."""
    if isinstance(value, str):
        if is_key(value):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _keys_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys_in(item)


class Eraser:
    def __init__(self, store: JobStore, artifacts: ArtifactStore, caches: dict[str, Cache]) -> None:
        self.store, self.artifacts, self.caches = store, artifacts, caches

    def session(self, session_id: str) -> Erased:
        jobs = self.store.session_jobs(session_id)
        ids = [job.id for job in jobs]
        events = self.store.event_data(ids) if ids else []
        files = set(_keys_in([[job.portrait_key, job.audio_key, job.speech_key, job.video_key, job.dispatch]
                              for job in jobs]))
        files |= set(_keys_in(events))
        cached = [("video", job.cache_key) for job in jobs if job.cache_key]
        cached += [(_CACHE_FIELDS[f], data[f]) for data in events for f in _CACHE_FIELDS if data.get(f)]
        self.store.delete_session(session_id)
        return Erased(len(ids), self._remove(files), self._uncache(cached))

    def avatar(self, avatar_id: str, portrait_key: str) -> Erased:
        self.store.delete_avatar(avatar_id)
        return Erased(0, self._remove({portrait_key}), 0)

    def _remove(self, keys: set[str]) -> int:
        gone = sorted(keys - self.store.still_named(sorted(keys))) if keys else []
        for key in gone:
            self.artifacts.remove(key)
            for prepared in self.artifacts.prepared_files(key):
                prepared.unlink(missing_ok=True)
        if gone:
            self.store.delete_artifact_rows(gone)
        return len(gone)

    def _uncache(self, entries: list[tuple[str, str]]) -> int:
        removed = 0
        for namespace, key in entries:
            cache = self.caches.get(namespace)
            removed += bool(cache is not None and cache.remove(key))
        return removed
