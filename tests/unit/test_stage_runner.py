"""run_stage: events, hand-on, failure codes and retries, with fake backends and a recorded broker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import workers.stage as stage_module
from workers.errors import PermanentError, TransientError
from workers.payload import JobPayload, plan_for

pytestmark = pytest.mark.unit

KEY = "a" * 64 + ".png"


class Retry(Exception):
    pass


class FakeTask:
    def __init__(self, retries: int = 0) -> None:
        self.request = SimpleNamespace(retries=retries)
        self.retried_with: dict[str, Any] = {}

    def retry(self, **kwargs: Any) -> Exception:
        self.retried_with = kwargs
        return Retry()


@pytest.fixture
def recorded(monkeypatch):
    events: list[Any] = []
    published: list[JobPayload] = []
    monkeypatch.setattr(stage_module, "publish_event", lambda event, settings: events.append(event))
    monkeypatch.setattr(stage_module, "publish_stage", lambda payload, settings: published.append(payload))
    monkeypatch.setattr(stage_module, "is_cancelled", lambda job_id: False)
    return events, published


def payload(plan=("tts", "animation")) -> dict:
    return JobPayload(job_id="j1", session_id="s1", mode="speak", plan=list(plan), portrait_key=KEY,
                      text="hi").model_dump()


def test_success_hands_on_to_the_next_stage(recorded):
    events, published = recorded
    result = stage_module.run_stage(FakeTask(), "tts", payload(),
                                    lambda job: (job.with_outputs(speech_seconds=1.5), {"speech_seconds": 1.5}))
    assert result["status"] == "ok"
    assert [e.kind for e in events] == ["started", "finished"]
    assert events[1].data == {"speech_seconds": 1.5} and events[1].seconds is not None
    assert [p.plan for p in published] == [["animation"]]
    assert published[0].speech_seconds == 1.5


def test_last_stage_reports_completed(recorded):
    events, published = recorded
    stage_module.run_stage(FakeTask(), "animation", payload(("animation",)), lambda job: (job, {"v": 1}))
    assert [e.kind for e in events] == ["started", "finished", "completed"]
    assert published == []


def test_permanent_error_fails_the_job_without_raising(recorded):
    events, published = recorded

    def work(job):
        raise PermanentError("no face in the photo", code="no_face")

    result = stage_module.run_stage(FakeTask(), "animation", payload(("animation",)), work)
    assert result == {"status": "failed", "code": "no_face"}
    assert events[-1].kind == "failed" and events[-1].data["code"] == "no_face"
    assert published == []


def test_a_bug_fails_the_job_with_internal_error(recorded):
    events, _ = recorded
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: 1 / 0)
    assert result["code"] == "internal_error"
    assert "ZeroDivisionError" in events[-1].data["message"]


def test_transient_error_retries_with_backoff_then_gives_up(recorded):
    events, _ = recorded

    def work(job):
        raise TransientError("broker blip")

    task = FakeTask(retries=0)
    with pytest.raises(Retry):
        stage_module.run_stage(task, "tts", payload(), work)
    assert events[-1].kind == "retrying" and 0 <= task.retried_with["countdown"] <= 1.0
    result = stage_module.run_stage(FakeTask(retries=3), "tts", payload(), work)
    assert result["status"] == "failed" and events[-1].kind == "failed"


def test_malformed_payload_is_rejected_without_events(recorded):
    events, published = recorded
    result = stage_module.run_stage(FakeTask(), "tts", {"job_id": "x", "portrait_key": "../../etc/passwd"},
                                    lambda job: (job, {}))
    assert result["code"] == "bad_payload" and events == [] and published == []


def test_plans_per_mode():
    assert plan_for("chat", True) == ["asr", "llm", "tts", "animation"]
    assert plan_for("chat", False) == ["llm", "tts", "animation"]
    assert plan_for("speak", False) == ["tts", "animation"]
    assert plan_for("lipsync", True) == ["animation"]


def test_backoff_is_bounded():
    assert all(0 <= stage_module.backoff_seconds(n) <= 30 for n in range(20))


def test_cancelled_job_is_skipped_without_events(recorded, monkeypatch):
    events, published = recorded
    monkeypatch.setattr(stage_module, "is_cancelled", lambda job_id: job_id == "j1")
    ran: list[str] = []
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: (ran.append("x") or job, {}))
    assert result == {"status": "cancelled"}
    assert ran == [] and events == [] and published == []


def test_work_that_hands_on_itself_publishes_nothing(recorded):
    events, published = recorded
    result = stage_module.run_stage(FakeTask(), "llm", payload(("llm", "tts", "animation")),
                                    lambda job: (None, {"segments": 3}))
    assert result["status"] == "ok"
    assert [e.kind for e in events] == ["started", "finished"] and published == []
    assert events[1].data == {"segments": 3}


def test_segment_events_carry_the_segment_index(recorded):
    events, _ = recorded
    raw = JobPayload.model_validate({**payload(), "segment": 2, "segment_text": "Hi."}).model_dump()
    stage_module.run_stage(FakeTask(), "tts", raw, lambda job: (job, {"x": 1}))
    assert all(e.data["segment"] == 2 for e in events)


def test_limits_of_another_stage_apply(recorded):
    events, _ = recorded
    task = FakeTask(retries=0)

    def flaky(job):
        raise TransientError("busy", code="busy")

    with pytest.raises(Retry):
        stage_module.run_stage(task, "assemble", payload(("animation",)), flaky, limits="animation")
    assert task.retried_with["max_retries"] == stage_module.get_settings().animation.max_retries


def test_a_callable_hands_on_after_the_finished_event(recorded):
    events, published = recorded
    seen: list[list[str]] = []
    stage_module.run_stage(FakeTask(), "animation", payload(("animation",)),
                           lambda job: (lambda: seen.append([e.kind for e in events]), {"segment_seconds": 1.0}))
    assert seen == [["started", "finished"]]
    assert [e.kind for e in events] == ["started", "finished"] and published == []
