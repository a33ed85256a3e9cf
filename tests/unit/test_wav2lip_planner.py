"""The batch planner of the pooled pipeline: first frames first in a small batch, then fair shares."""

from __future__ import annotations

import pytest

from workers.animation.wav2lip.planner import BatchPlanner, Part

pytestmark = pytest.mark.unit


def unlimited(key: object) -> int:
    return 10**9


@pytest.mark.parametrize("batch_size", [16, 128, 1024])
def test_a_new_render_goes_first_in_a_small_batch_whatever_the_batch_size(batch_size: int):
    planner = BatchPlanner(batch_size=batch_size, first_batch=8, chunk=16)
    planner.add("old", 10_000)
    assert planner.plan(unlimited) == [Part("old", 0, 8)]  # its own first batch
    assert sum(p.frames for p in planner.plan(unlimited)) == batch_size  # then a full one
    planner.add("new", 500)
    assert planner.has_first_frames(unlimited)
    # However much "old" still has to do, the next batch is the new render's first frames, and small.
    assert planner.plan(unlimited) == [Part("new", 0, 8)]
    assert planner.bucket(8) == 8
    following = planner.plan(unlimited)  # then fair shares again, the new render among them
    assert "new" in {p.key for p in following} and sum(p.frames for p in following) == batch_size


def test_new_renders_arriving_together_share_one_first_batch():
    planner = BatchPlanner(batch_size=32, first_batch=8)
    for key in "abcde":
        planner.add(key, 100)
    first = planner.plan(unlimited)
    assert first == [Part("a", 0, 8), Part("b", 0, 8), Part("c", 0, 8), Part("d", 0, 8)]
    assert planner.plan(unlimited) == [Part("e", 0, 8)]  # still before anyone's second frames


def test_a_short_render_takes_only_its_frames():
    planner = BatchPlanner(batch_size=64, first_batch=8)
    planner.add("tiny", 3)
    assert planner.plan(unlimited) == [Part("tiny", 0, 3)]
    assert planner.plan(unlimited) == []
    assert not planner.pending()


def test_fair_shares_go_round_robin_in_chunks():
    planner = BatchPlanner(batch_size=32, first_batch=4, chunk=8)
    for key in "abc":
        planner.add(key, 1000)
    planner.plan(unlimited)  # first frames of all three
    batch = planner.plan(unlimited)
    assert sum(p.frames for p in batch) == 32
    shares = {p.key: p.frames for p in batch}
    assert sorted(shares.values()) == [8, 8, 16]  # one extra chunk for whoever comes up again
    # Parts continue each render's frames where it left off.
    assert all(p.start == 4 for p in batch)
    # The next batch starts after the render served last, so nobody is favoured.
    later = planner.plan(unlimited)
    served = {p.key: p.frames for p in later}
    assert sum(served.values()) == 32 and min(shares[k] + served[k] for k in "abc") >= 16


def test_room_caps_what_a_render_takes_and_frames_come_in_whole_chunks():
    planner = BatchPlanner(batch_size=64, first_batch=4, chunk=8)
    planner.add("a", 100)
    planner.add("b", 100)
    room = {"a": 0, "b": 4}
    assert planner.plan(lambda k: room[k]) == [Part("b", 0, 4)]  # "a" has no room for its first frames
    room = {"a": 4, "b": 7}
    assert planner.plan(lambda k: room[k]) == [Part("a", 0, 4)]
    # 7 free for "b" is not a whole chunk of 8: it waits rather than send a sliver.
    assert planner.ready_frames(lambda k: room[k]) == 0
    assert planner.plan(lambda k: room[k]) == []
    room = {"a": 20, "b": 8}
    assert planner.ready_frames(lambda k: room[k]) == 24
    batch = planner.plan(lambda k: room[k])
    assert {p.key: p.frames for p in batch} == {"a": 16, "b": 8}


def test_the_last_frames_of_a_render_need_no_whole_chunk():
    planner = BatchPlanner(batch_size=64, first_batch=4, chunk=8)
    planner.add("a", 7)
    planner.plan(unlimited)
    assert planner.plan(lambda k: 3) == [Part("a", 4, 7)]


def test_buckets_are_the_first_batch_and_the_batch_size():
    planner = BatchPlanner(batch_size=128, first_batch=8)
    assert planner.buckets == (8, 128)
    assert [planner.bucket(n) for n in (1, 8, 9, 128)] == [8, 8, 128, 128]
    assert BatchPlanner(batch_size=4, first_batch=8).buckets == (4,)


def test_removed_renders_are_no_longer_planned_and_bad_input_is_refused():
    planner = BatchPlanner(batch_size=16, first_batch=4)
    planner.add("a", 10)
    planner.remove("a")
    assert planner.plan(unlimited) == [] and len(planner) == 0
    planner.add("b", 10)
    with pytest.raises(ValueError):
        planner.add("b", 10)
    with pytest.raises(ValueError):
        planner.add("c", 0)
    with pytest.raises(ValueError):
        BatchPlanner(batch_size=0, first_batch=1)
