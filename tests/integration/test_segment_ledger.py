"""The segment ledger and the cancel flags on the real results Redis: exactly one caller assembles, whatever the
order."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from pipeline.cancel import CancelFlags
from pipeline.ledger import Segment, SegmentLedger
from tests.farm import RESULTS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger() -> SegmentLedger:
    return SegmentLedger(redis.Redis.from_url(RESULTS_URL), prefix=f"test-{uuid.uuid4().hex[:8]}-", ttl_seconds=60)


def seg(i: int) -> Segment:
    return Segment(index=i, video_key=f"{i:064x}.mp4", speech_key=f"{i:064x}.wav", seconds=1.0 + i,
                   text_key=f"{i:064x}.json")


def owner(job: str, i: int | str) -> str:
    return f"{job}.animation.{i}"


def test_close_after_last_segment_claims_assembly(ledger: SegmentLedger) -> None:
    job = uuid.uuid4().hex
    assert ledger.land(job, seg(1), owner(job, 1)) is False
    assert ledger.land(job, seg(0), owner(job, 0)) is False  # the count is not known yet
    assert ledger.close(job, 2, f"{job}.llm") is True
    assert ledger.close(job, 2, "someone else") is False  # the claim is the LLM task's while its lease runs
    assert [s.index for s in ledger.segments(job)] == [0, 1]
    assert ledger.segments(job)[1] == seg(1)
    assert ledger.total(job) == 2
    ledger.mark_assembled(job)
    assert ledger.assembled(job) and ledger.close(job, 2, f"{job}.llm") is False  # published: never again


def test_last_segment_after_close_claims_assembly(ledger: SegmentLedger) -> None:
    job = uuid.uuid4().hex
    assert ledger.close(job, 3, f"{job}.llm") is False
    assert ledger.land(job, seg(2), owner(job, 2)) is False
    assert ledger.land(job, seg(0), owner(job, 0)) is False
    assert ledger.land(job, seg(1), owner(job, 1)) is True
    # Another segment's task landing again (a redelivery) must not assemble a second time...
    assert ledger.land(job, seg(0), owner(job, 0)) is False
    # ...but the claimer itself, redelivered after a crash before it published, claims again.
    assert ledger.land(job, seg(1), owner(job, 1)) is True
    ledger.mark_assembled(job)
    assert ledger.land(job, seg(1), owner(job, 1)) is False
    assert len(ledger.segments(job)) == 3


def test_the_set_is_complete_only_with_every_index(ledger: SegmentLedger) -> None:
    job = uuid.uuid4().hex
    assert ledger.close(job, 2, f"{job}.llm") is False
    # Two landings, but of indices 1 and 5: "two have landed" is not "0 and 1 have landed".
    assert ledger.land(job, seg(1), owner(job, 1)) is False
    assert ledger.land(job, seg(5), owner(job, 5)) is False
    assert ledger.land(job, seg(0), owner(job, 0)) is True
    assert [s.index for s in ledger.segments(job)] == [0, 1]  # what the assembly joins


def test_a_claim_whose_holder_vanished_passes_on_after_its_lease(ledger: SegmentLedger) -> None:
    short = SegmentLedger(ledger._redis, prefix=ledger._prefix.removesuffix("talkfarm:job:"), ttl_seconds=60,
                          lease_seconds=1)
    job = uuid.uuid4().hex
    assert short.land(job, seg(0), owner(job, 0)) is False
    assert short.close(job, 1, f"{job}.llm") is True  # the LLM task claims, then dies before publishing
    assert short.land(job, seg(0), owner(job, 0)) is False  # its lease holds
    deadline = time.monotonic() + 5
    while not short.land(job, seg(0), owner(job, 0)):  # the segment task, redelivered, takes over
        assert time.monotonic() < deadline, "the claim never passed on"
        time.sleep(0.1)


def test_concurrent_landings_assemble_once(ledger: SegmentLedger) -> None:
    job = uuid.uuid4().hex
    claims: list[bool] = []
    lock = threading.Lock()

    def land(i: int) -> None:
        claimed = ledger.land(job, seg(i), owner(job, i))
        with lock:
            claims.append(claimed)

    threads = [threading.Thread(target=land, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    closed = ledger.close(job, 20, f"{job}.llm")
    for t in threads:
        t.join()
    assert claims.count(True) + int(closed) == 1


def test_cancel_flag() -> None:
    flags = CancelFlags(redis.Redis.from_url(RESULTS_URL), prefix=f"test-{uuid.uuid4().hex[:8]}-", ttl_seconds=60)
    job = uuid.uuid4().hex
    assert not flags.cancelled(job) and not flags.cancelled_or_unknown(job)
    flags.cancel(job)
    assert flags.cancelled(job) and flags.cancelled_or_unknown(job)
    assert not flags.cancelled(uuid.uuid4().hex)
    down = CancelFlags(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
    assert down.cancelled_or_unknown(job) is False  # an outage never stops the work


def test_close_rejects_zero(ledger: SegmentLedger) -> None:
    with pytest.raises(ValueError):
        ledger.close(uuid.uuid4().hex, 0, "owner")
