"""run_stage: events, hand-on, failure codes, retries, poison messages and outages around the work, with fake
work, a fake ledger and a recorded broker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

import pipeline.runner as stage_module
from contracts.artifacts import ArtifactStore
from contracts.catalog import StageOffer
from contracts.errors import PermanentError, TransientError
from contracts.job_texts import JobTexts
from contracts.payload import JobPayload, plan_for
from pipeline.ledger import Segment
from pipeline.runner import Outcome

pytestmark = pytest.mark.unit

KEY = "a" * 64 + ".png"
VIDEO = "b" * 64 + ".mp4"
SPEECH = "c" * 64 + ".wav"
CONTEXT = "d" * 64 + ".json"


class Retry(Exception):
    pass


class FakeTask:
    def __init__(self, retries: int = 0, task_id: str = "j1.tts") -> None:
        self.request = SimpleNamespace(retries=retries, id=task_id)
        self.retried_with: dict[str, Any] = {}

    def retry(self, **kwargs: Any) -> Exception:
        self.retried_with = kwargs
        return Retry()


class FakeLedger:
    """Claims the assembly once ``total`` segments have landed and the count is known."""

    def __init__(self) -> None:
        self.landed: set[int] = set()
        self.total: int | None = None
        self.claimed = False

    def _claim(self) -> bool:
        if self.total is not None and self.landed >= set(range(self.total)) and not self.claimed:
            self.claimed = True
            return True
        return False

    def land(self, job_id: str, segment: Segment, owner: str) -> bool:
        self.landed.add(segment.index)
        return self._claim()

    def close(self, job_id: str, total: int, owner: str) -> bool:
        self.total = total
        return self._claim()

    def mark_assembled(self, job_id: str) -> None:
        self.assembled = True


class FakeDeliveries:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}

    def count(self, task_id: str, attempt: int) -> int:
        self.counts[(task_id, attempt)] = self.counts.get((task_id, attempt), 0) + 1
        return self.counts[(task_id, attempt)]

    def uncount(self, task_id: str, attempt: int) -> None:
        self.counts[(task_id, attempt)] -= 1


class Recorded(SimpleNamespace):
    events: list[Any]
    published: list[JobPayload]
    assembled: list[JobPayload]
    cancelled: set[str]
    ledger: FakeLedger
    offers: dict[str, StageOffer]
    deliveries: FakeDeliveries
    outages: dict[str, int]  # what → how many calls fail before one succeeds


def _flaky(rec: Recorded, what: str, action: Any) -> Any:
    def call(*args: Any) -> Any:
        if rec.outages.get(what, 0) > 0:
            rec.outages[what] -= 1
            raise OperationalError(f"{what}: connection refused")
        return action(*args)
    return call


@pytest.fixture
def recorded(monkeypatch) -> Recorded:
    rec = Recorded(events=[], published=[], assembled=[], cancelled=set(), ledger=FakeLedger(), offers={},
                   deliveries=FakeDeliveries(), outages={})
    monkeypatch.setattr(stage_module, "publish_event", _flaky(rec, "event", lambda e, s: rec.events.append(e)))
    monkeypatch.setattr(stage_module, "publish_stage", _flaky(rec, "publish", lambda p, s: rec.published.append(p)))
    monkeypatch.setattr(stage_module, "publish_assembly", lambda payload, settings: rec.assembled.append(payload))
    monkeypatch.setattr(stage_module, "ledger_for", lambda settings: rec.ledger)
    monkeypatch.setattr(stage_module.DeliveryCounter, "from_settings",
                        classmethod(lambda cls, settings: rec.deliveries))
    flags = SimpleNamespace(cancelled_or_unknown=lambda job_id: job_id in rec.cancelled,
                            cancel=lambda job_id: rec.cancelled.add(job_id))
    monkeypatch.setattr(stage_module.CancelFlags, "from_settings", classmethod(lambda cls, settings: flags))
    # Outages in these tests last a call or two: a short hand-on budget keeps them quick.
    settings = stage_module.get_settings().model_copy(deep=True)
    settings.reliability.handoff_seconds = 2.0
    monkeypatch.setattr(stage_module, "get_settings", lambda: settings)
    monkeypatch.setattr(stage_module.runtime, "own_offer", lambda stage: rec.offers.get(stage))
    monkeypatch.setattr(stage_module.runtime, "offers", lambda: SimpleNamespace(refresh=lambda: None))
    return rec


def payload(plan=("tts", "animation"), **extra: Any) -> dict:
    return JobPayload(job_id="j1", session_id="s1", mode="speak", plan=list(plan), portrait_key=KEY,
                      context_key=CONTEXT, **extra).model_dump()


def sentence_key(index: int) -> str:
    return f"{index:064x}.json"


def test_success_hands_on_to_the_next_stage(recorded):
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: Outcome(
        summary={"speech_seconds": 1.5}, payload=job.with_outputs(speech_seconds=1.5)))
    assert result["status"] == "ok"
    assert [e.kind for e in recorded.events] == ["started", "finished"]
    assert recorded.events[1].data == {"speech_seconds": 1.5} and recorded.events[1].seconds is not None
    assert [p.plan for p in recorded.published] == [["animation"]]
    assert recorded.published[0].speech_seconds == 1.5


def test_last_stage_reports_completed(recorded):
    stage_module.run_stage(FakeTask(), "animation", payload(("animation",)),
                           lambda job: Outcome(summary={"v": 1}, payload=job))
    assert [e.kind for e in recorded.events] == ["started", "finished", "completed"]
    assert recorded.published == []


def test_permanent_error_fails_the_job_without_raising(recorded):
    def work(job):
        raise PermanentError("no face in the photo", code="no_face")

    result = stage_module.run_stage(FakeTask(), "animation", payload(("animation",)), work)
    assert result == {"status": "failed", "code": "no_face"}
    assert recorded.events[-1].kind == "failed" and recorded.events[-1].data["code"] == "no_face"
    assert recorded.published == []
    assert "j1" in recorded.cancelled  # the job's other subtasks need not run


def test_a_bug_fails_the_job_with_internal_error(recorded):
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: 1 / 0)
    assert result["code"] == "internal_error"
    assert "ZeroDivisionError" in recorded.events[-1].data["message"]


def test_transient_error_retries_with_backoff_then_gives_up(recorded):
    def work(job):
        raise TransientError("broker blip")

    task = FakeTask(retries=0)
    with pytest.raises(Retry):
        stage_module.run_stage(task, "tts", payload(), work)
    assert recorded.events[-1].kind == "retrying" and 0 <= task.retried_with["countdown"] <= 1.0
    result = stage_module.run_stage(FakeTask(retries=3), "tts", payload(), work)
    assert result["status"] == "failed" and recorded.events[-1].kind == "failed"


def test_malformed_payload_is_rejected_without_events(recorded):
    result = stage_module.run_stage(FakeTask(), "tts", {"job_id": "x", "portrait_key": "../../etc/passwd"},
                                    lambda job: Outcome(payload=job))
    assert result["code"] == "bad_payload" and recorded.events == [] and recorded.published == []


def test_plans_per_mode():
    assert plan_for("chat", True) == ["asr", "llm", "tts", "animation"]
    assert plan_for("chat", False) == ["llm", "tts", "animation"]
    assert plan_for("speak", False) == ["tts", "animation"]
    assert plan_for("lipsync", True) == ["animation"]


def test_backoff_is_bounded():
    assert all(0 <= stage_module.backoff_seconds(n) <= 30 for n in range(20))


def test_cancelled_job_is_skipped_without_events(recorded):
    recorded.cancelled.add("j1")
    ran: list[str] = []
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: ran.append("x") or Outcome())
    assert result == {"status": "cancelled"}
    assert ran == [] and recorded.events == [] and recorded.published == []


def test_a_streamed_reply_records_its_count_and_publishes_nothing_itself(recorded):
    result = stage_module.run_stage(FakeTask(), "llm", payload(("llm", "tts", "animation")),
                                    lambda job: Outcome(summary={"segments": 3}, segments=3))
    assert result["status"] == "ok"
    assert [e.kind for e in recorded.events] == ["started", "finished"] and recorded.published == []
    assert recorded.events[1].data == {"segments": 3}
    assert recorded.ledger.total == 3 and recorded.assembled == []  # no segment has landed yet


def test_segment_stages_prefix_their_summary_and_carry_the_index(recorded):
    raw = payload(segment=2, segment_text_key=sentence_key(2))
    stage_module.run_stage(FakeTask(), "tts", raw, lambda job: Outcome(summary={"speech_key": SPEECH}, payload=job))
    assert all(e.data["segment"] == 2 for e in recorded.events)
    assert recorded.events[1].data == {"segment": 2, "segment_speech_key": SPEECH}  # never taken for the job's


def test_a_landed_segment_is_reported_after_finished_and_the_last_one_assembles(recorded):
    recorded.ledger.close("j1", 2, "j1.llm")
    for index in (1, 0):
        raw = payload(("animation",), segment=index, segment_text_key=sentence_key(index))

        def work(job: JobPayload) -> Outcome:
            segment = Segment(index=job.segment or 0, video_key=VIDEO, speech_key=SPEECH, seconds=1.0,
                              text_key=job.segment_text_key)
            return Outcome(summary={"video_key": VIDEO}, segment=segment, segment_data={"ts_key": "t"})

        stage_module.run_stage(FakeTask(), "animation", raw, work)
    kinds = [(e.kind, e.data.get("segment")) for e in recorded.events]
    assert kinds == [("started", 1), ("finished", 1), ("segment", 1), ("started", 0), ("finished", 0), ("segment", 0)]
    # The sentence is named by its text artifact; the coordinator reads it into the event's "text".
    assert recorded.events[2].data == {"segment": 1, "seconds": 1.0, "texts": {"text": sentence_key(1)},
                                       "video_key": VIDEO, "ts_key": "t"}
    assert len(recorded.assembled) == 1 and recorded.published == []


def test_a_payload_of_the_previous_version_runs_with_its_texts_stored(recorded, tmp_path):
    stage_module.get_settings().data_dir = tmp_path
    old = {k: v for k, v in payload().items() if not k.endswith("_key") or k == "portrait_key"}
    old.update(text="Hello there.", history=[], system_prompt=None, transcript=None, reply=None, segment_text=None)
    said: list[str | None] = []

    def work(job: JobPayload) -> Outcome:
        said.append(JobTexts(ArtifactStore(tmp_path / "artifacts"), job.context_key).words(job))
        return Outcome(payload=job)

    assert stage_module.run_stage(FakeTask(), "tts", old, work)["status"] == "ok"
    assert said == ["Hello there."]
    assert recorded.published[0].context_key is not None  # the next stage gets the current form


def test_limits_of_another_stage_apply(recorded):
    task = FakeTask(retries=0)

    def flaky(job):
        raise TransientError("busy", code="busy")

    with pytest.raises(Retry):
        stage_module.run_stage(task, "assemble", payload(("animation",)), flaky, limits="animation")
    assert task.retried_with["max_retries"] == stage_module.get_settings().animation.max_retries


def _offer(digest: str) -> StageOffer:
    return StageOffer(stage="tts", digest=digest, backends={"piper": "2"})


@pytest.mark.parametrize("own, expected, kept", [
    ("d1", "d1", True),    # the worker serves what the cache key stands for
    ("d2", "d1", False),   # other backends, versions or settings: the video must not go under the key
    (None, "d1", False),   # a worker that has published nothing cannot vouch for the key
])
def test_the_cache_key_is_kept_only_by_a_worker_of_the_same_offer(recorded, own, expected, kept):
    if own is not None:
        recorded.offers["tts"] = _offer(own)
    seen: list[str | None] = []
    raw = payload(cache_key="k" * 64, stage_digests={"tts": expected})
    stage_module.run_stage(FakeTask(), "tts", raw, lambda job: seen.append(job.cache_key) or Outcome(payload=job))
    assert seen == (["k" * 64] if kept else [None])
    assert recorded.published[0].cache_key == seen[0]  # and the stages after it see the same


def test_event_ids_are_the_same_for_a_redelivered_task(recorded):
    for _ in range(2):  # the same message delivered twice (its worker died after the work)
        stage_module.run_stage(FakeTask(task_id="j1.tts"), "tts", payload(), lambda job: Outcome(payload=job))
    ids = [e.event_id for e in recorded.events]
    assert ids[:2] == ["j1.tts:0:started", "j1.tts:0:finished"] and ids[2:] == ids[:2]


def test_a_message_that_keeps_killing_its_worker_is_dead_lettered(recorded):
    ran: list[int] = []
    for _ in range(3):  # three deliveries: each one's worker died during the work (the work never returned)
        recorded.deliveries.count("j1.tts", 0)
    with pytest.raises(Reject) as rejected:
        stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: ran.append(1) or Outcome(payload=job))
    assert rejected.value.requeue is False and ran == []
    assert recorded.events[-1].kind == "failed" and recorded.events[-1].data["code"] == "stage_crashed"


def test_an_outage_after_the_work_is_ridden_out(recorded):
    recorded.outages.update(event=1, publish=2)  # the started event and the next stage's publish each fail first
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: Outcome(payload=job))
    assert result["status"] == "ok"
    assert [e.kind for e in recorded.events] == ["started", "finished"] and len(recorded.published) == 1


def test_a_hand_on_that_keeps_failing_fails_the_job_with_a_code(recorded):
    recorded.outages["publish"] = 10_000
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: Outcome(payload=job))
    assert result == {"status": "failed", "code": "handoff_failed"}
    assert [e.kind for e in recorded.events] == ["started", "finished", "failed"]


def test_a_full_next_queue_fails_the_job_with_queue_full(recorded, monkeypatch):
    def full(payload, settings):
        raise stage_module.QueueFull("the animation queue is full")

    monkeypatch.setattr(stage_module, "publish_stage", full)
    result = stage_module.run_stage(FakeTask(), "tts", payload(), lambda job: Outcome(payload=job))
    assert result == {"status": "failed", "code": "queue_full"}


def test_when_not_even_the_failure_can_be_said_the_message_goes_back(recorded):
    def work(job):
        recorded.outages["event"] = 10_000  # the broker goes away during the work, for good
        raise PermanentError("bad", code="bad_input")

    with pytest.raises(Reject) as rejected:
        stage_module.run_stage(FakeTask(), "tts", payload(), work)
    assert rejected.value.requeue is True and [e.kind for e in recorded.events] == ["started"]
    # An outage is not a crash: the delivery is not counted against the message.
    assert recorded.deliveries.counts[("j1.tts", 0)] == 0
