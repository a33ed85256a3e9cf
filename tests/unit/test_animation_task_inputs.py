"""What the animation task hands its backend: the face option and the TTS timings (the words spoken: test_job_texts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.artifacts import ArtifactStore
from contracts.payload import JobPayload
from contracts.timings import Timing
from coordinator.admission import MAX_FACE_INDEX, check_face
from coordinator.errors import ApiError
from workers.animation.tasks import load_timings

pytestmark = pytest.mark.unit

KEY = "ab" * 32 + ".png"


def _payload(**fields: object) -> JobPayload:
    return JobPayload.model_validate({"job_id": "j", "session_id": "s", "mode": "speak", "plan": ["animation"],
                                      "portrait_key": KEY, **fields})


def test_the_face_field_is_a_small_whole_number() -> None:
    assert check_face(None) == 0 and check_face("") == 0 and check_face(" 2 ") == 2
    assert check_face(str(MAX_FACE_INDEX)) == MAX_FACE_INDEX
    for bad in ("-1", "x", "1.5", str(MAX_FACE_INDEX + 1), "١"):
        with pytest.raises(ApiError) as caught:
            check_face(bad)
        assert caught.value.status == 422 and caught.value.code == "bad_face"


def test_the_payload_carries_the_face_index() -> None:
    assert _payload().face_index == 0
    assert _payload(face_index=3).face_index == 3
    with pytest.raises(ValueError):
        _payload(face_index=-1)


def test_timings_are_read_from_the_tts_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    document = {"kind": "phoneme", "source": "model", "seconds": 0.5,
                "items": [{"start": 0.0, "end": 0.1, "label": "h"}, {"start": 0.1, "end": 0.3, "label": "ə"}]}
    key = store.put_bytes(json.dumps(document).encode(), "json").key
    assert load_timings(store, key) == (Timing(0.0, 0.1, "h", "phoneme"), Timing(0.1, 0.3, "ə", "phoneme"))
    assert load_timings(store, None) == ()


def test_unreadable_timings_are_ignored(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    for content in (b"not json", b"[1, 2]", json.dumps({"items": [{"start": 0}]}).encode()):
        assert load_timings(store, store.put_bytes(content, "json").key) == ()
    assert load_timings(store, "cd" * 32 + ".json") == ()  # missing
