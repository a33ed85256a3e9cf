"""The segment ledger and the cancel flags on the real results Redis: exactly one caller assembles, whatever the
order."""

from __future__ import annotations

import threading
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
    return Segment(index=i, video_key=f"{i:064x}.mp4", speech_key=f"{i:064x}.wav", seconds=1.0 + i, text=f"s{i}")


def test_close_after_last_segment_claims_assembly(ledger: SegmentLedger) -> None:
    job = uuid.uuid4().hex
    assert ledger.land(job, seg(1)) is False
    assert ledger.land(job, seg(0)) is False  # the count is not known yet
    assert ledger.close(job, 2) is True
    assert ledger.close(job, 2) is False  # claimed once only
    assert [s.index for s in ledger.segments(job)] == [0, 1]
    assert ledger.segments(job)[1] == seg(1)
    assert ledger.total(job) == 2


def test_last_segment_after_close_claims_assembly(ledger: SegmentLedger) -> None:
    job = uuid.uuid4().hex
    assert ledger.close(job, 3) is False
    assert ledger.land(job, seg(2)) is False
    assert ledger.land(job, seg(0)) is False
    assert ledger.land(job, seg(1)) is True
    # A redelivered segment task lands again: it must not assemble a second time.
    assert ledger.land(job, seg(1)) is False
    assert len(ledger.segments(job)) == 3


def test_concurrent_landings_assemble_once(ledger: SegmentLedger) -> None:
    job = uuid.uuid4().hex
    claims: list[bool] = []
    lock = threading.Lock()

    def land(i: int) -> None:
        claimed = ledger.land(job, seg(i))
        with lock:
            claims.append(claimed)

    threads = [threading.Thread(target=land, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    closed = ledger.close(job, 20)
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
        ledger.close(uuid.uuid4().hex, 0)
