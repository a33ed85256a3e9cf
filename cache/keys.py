"""Content-hash cache keys.

Artifact keys are already SHA-256 digests of the bytes they name, so keys are
built from them rather than by hashing media again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence


def content_hash(*parts: object) -> str:
    """SHA-256 over the parts; mappings and sequences are hashed as canonical JSON."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, bytes):
            data = part
        elif isinstance(part, str):
            data = part.encode()
        else:
            data = json.dumps(part, sort_keys=True, separators=(",", ":"), default=str).encode()
        # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def render_key(portrait_key: str, speech_key: str, backend: str, version: str,
               render_settings: Mapping[str, Any]) -> str:
    """Key of the video that one backend renders from one portrait and one speech recording."""
    return content_hash("render", portrait_key, speech_key, backend, version, dict(render_settings))


def request_key(mode: str, portrait_key: str, question: str, options: Mapping[str, Any],
                history: Sequence[Mapping[str, str]], stages: Mapping[str, Any]) -> str:
    """Key of the video a whole request produces.

    ``question`` is the input audio's artifact key or the text; ``stages`` names
    each stage's backend, version and output-shaping settings, so a change of
    model or settings never serves a stale video.
    """
    return content_hash("request", mode, portrait_key, question, dict(options), list(history), dict(stages))
