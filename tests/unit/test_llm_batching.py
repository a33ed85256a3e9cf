"""The LLM batcher and reply streaming, with a fake model: what is batched together, cancelled, failed."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from contracts.errors import StageTimeout, TransientError
from contracts.settings import Settings
from workers.llm.base import GenerationOptions, LLMBackend
from workers.llm.batching import Batcher, GenerationRequest, RequestStats
from workers.llm.deltas import ReplyText, cut_at_stop, partial_stop_length

pytestmark = pytest.mark.unit


class FakeModel:
    """Generates ``"w<prompt[0]> "`` ``steps`` times per row, one step per ``step_seconds``, like a batch would."""

    def __init__(self, steps: int = 3, step_seconds: float = 0.01, fail: Exception | None = None) -> None:
        self.steps, self.step_seconds, self.fail = steps, step_seconds, fail
        self.batches: list[list[list[int]]] = []
        self.started = threading.Event()

    def run(self, batch: list[GenerationRequest]) -> None:
        self.batches.append([r.prompt for r in batch])
        self.started.set()
        if self.fail is not None:
            raise self.fail
        texts = [ReplyText(r.options.stop) for r in batch]
        outputs = ["" for _ in batch]
        for step in range(self.steps):
            time.sleep(self.step_seconds)
            for row, request in enumerate(batch):
                if request.cancelled.is_set() or request.closed:
                    continue
                outputs[row] += f"w{request.prompt[0]}.{step} "
                request.emit(texts[row].update(outputs[row]))
        for row, request in enumerate(batch):
            request.emit(texts[row].finish(outputs[row]))
            request.finish(RequestStats(len(request.prompt), self.steps, 0.1, 0.01, len(batch)))


def collect(batcher: Batcher, prompts: list[int], options: GenerationOptions | None = None) -> dict[int, str]:
    """Submit every prompt from its own thread at once; the joined reply of each."""
    replies: dict[int, str] = {}
    barrier = threading.Barrier(len(prompts))

    def ask(prompt: int) -> None:
        barrier.wait()
        request = batcher.submit(GenerationRequest([prompt], options or GenerationOptions()))
        replies[prompt] = "".join(request.deltas(timeout=10))

    threads = [threading.Thread(target=ask, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return replies


def test_waiting_requests_are_generated_together() -> None:
    model = FakeModel()
    batcher = Batcher(model.run, max_batch=4, window_seconds=0.2)
    replies = collect(batcher, [1, 2, 3, 4])
    assert replies == {p: f"w{p}.0 w{p}.1 w{p}.2" for p in (1, 2, 3, 4)}
    assert batcher.batch_sizes == [4]
    batcher.close()


def test_batches_are_capped_and_one_at_a_time_without_batching() -> None:
    model = FakeModel()
    capped = Batcher(model.run, max_batch=2, window_seconds=0.2)
    collect(capped, [1, 2, 3, 4, 5])
    assert sorted(capped.batch_sizes) == [1, 2, 2] and sum(capped.batch_sizes) == 5
    single = Batcher(model.run, max_batch=1, window_seconds=0.2)
    assert collect(single, [6, 7, 8]) == {p: f"w{p}.0 w{p}.1 w{p}.2" for p in (6, 7, 8)}
    assert single.batch_sizes == [1, 1, 1]
    capped.close()
    single.close()


def test_requests_with_different_options_are_not_mixed() -> None:
    model = FakeModel(step_seconds=0.05)
    batcher = Batcher(model.run, max_batch=8, window_seconds=0.3)
    first = batcher.submit(GenerationRequest([1], GenerationOptions(max_new_tokens=10)))
    other = batcher.submit(GenerationRequest([2], GenerationOptions(max_new_tokens=20)))
    same = batcher.submit(GenerationRequest([3], GenerationOptions(max_new_tokens=10)))
    assert "".join(first.deltas(10)) == "w1.0 w1.1 w1.2"
    assert "".join(other.deltas(10)) == "w2.0 w2.1 w2.2"
    assert "".join(same.deltas(10)) == "w3.0 w3.1 w3.2"
    assert model.batches == [[[1], [3]], [[2]]]  # the odd one out waits for the next batch, in order
    batcher.close()


def test_deltas_stream_before_the_batch_ends_and_carry_stats() -> None:
    model = FakeModel(steps=5, step_seconds=0.1)
    batcher = Batcher(model.run, max_batch=1, window_seconds=0)
    request = batcher.submit(GenerationRequest([9], GenerationOptions()))
    start = time.perf_counter()
    deltas = request.deltas(10)
    assert next(deltas) == "w9.0"
    assert time.perf_counter() - start < 0.35  # the first of five 0.1 s steps, not all of them
    assert "".join(deltas) == " w9.1 w9.2 w9.3 w9.4"
    assert request.stats is not None and request.stats.new_tokens == 5
    batcher.close()


def test_leaving_the_stream_cancels_the_request() -> None:
    model = FakeModel(steps=20, step_seconds=0.05)
    batcher = Batcher(model.run, max_batch=2, window_seconds=0)
    request = batcher.submit(GenerationRequest([5], GenerationOptions()))
    deltas = request.deltas(10)
    next(deltas)
    deltas.close()
    assert request.cancelled.is_set()
    # A request cancelled before its batch starts is never generated.
    model.started.clear()
    blocker = batcher.submit(GenerationRequest([6], GenerationOptions(max_new_tokens=1)))
    skipped = GenerationRequest([7], GenerationOptions(max_new_tokens=2))
    skipped.cancel()
    batcher.submit(skipped)
    assert "".join(blocker.deltas(10))
    assert list(skipped.deltas(10)) == []
    assert [7] not in [prompt for batch in model.batches for prompt in batch]
    batcher.close()


def test_a_failed_batch_fails_each_of_its_requests() -> None:
    model = FakeModel(fail=TransientError("out of memory"))
    batcher = Batcher(model.run, max_batch=4, window_seconds=0.2)
    errors: list[BaseException] = []

    def ask(prompt: int) -> None:
        try:
            list(batcher.submit(GenerationRequest([prompt], GenerationOptions())).deltas(10))
        except TransientError as e:
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(p,)) for p in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 3
    # The generation thread survives a failed batch.
    model.fail = None
    assert "".join(batcher.submit(GenerationRequest([4], GenerationOptions())).deltas(10)) == "w4.0 w4.1 w4.2"
    batcher.close()


def test_waiting_has_a_bound_and_close_ends_the_thread() -> None:
    gate = threading.Event()

    def stuck(batch: list[GenerationRequest]) -> None:
        gate.wait(5)

    batcher = Batcher(stuck, max_batch=1, window_seconds=0)
    first = batcher.submit(GenerationRequest([1], GenerationOptions()))
    with pytest.raises(StageTimeout):
        list(first.deltas(timeout=0.2))
    waiting = batcher.submit(GenerationRequest([2], GenerationOptions()))
    closer = threading.Thread(target=batcher.close)
    closer.start()
    gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert list(waiting.deltas(timeout=5)) == []  # submitted before the close: run (here: nothing to say)
    assert batcher._thread is None


class TestReplyText:
    def test_joined_deltas_are_the_stripped_reply(self) -> None:
        text, sent = ReplyText(), []
        for grown in ["  ", "  Hel", "  Hello ", "  Hello world", "  Hello world!\n"]:
            sent.append(text.update(grown))
        sent.append(text.finish("  Hello world!\n"))
        assert sent == ["", "Hel", "lo", " world", "!", ""]

    def test_stop_strings_cut_and_are_held_back_while_undecided(self) -> None:
        text = ReplyText(stop=("\nUser:",))
        assert text.update("Fine.\nUs") == "Fine."
        assert text.update("Fine.\nUse") == ""
        assert text.update("Fine.\nUser: and") == ""
        assert text.stopped
        assert text.finish("Fine.\nUser: and more") == ""
        released = ReplyText(stop=("\nUser:",))
        assert released.update("Fine.\nUs") == "Fine."
        assert released.update("Fine.\nUsually") == "\nUsually"

    def test_an_unfinished_character_waits(self) -> None:
        text = ReplyText()
        assert text.update("caf\ufffd") == "caf"
        assert text.update("café") == "é"

    def test_helpers(self) -> None:
        assert cut_at_stop("a. b! c", (".", "!")) == "a"
        assert cut_at_stop("abc", ("", "x")) == "abc"
        assert partial_stop_length("hello <|im", ("<|im_end|>",)) == 4
        assert partial_stop_length("hello", ("<|im_end|>",)) == 0


class StreamingFake(LLMBackend):
    name = "streaming-fake"

    def _stream(self, messages, options) -> Iterator[str]:  # type: ignore[no-untyped-def]
        yield from ["Hello", " there", "."]


class WholeFake(LLMBackend):
    name = "whole-fake"

    def _reply(self, messages, options) -> str:  # type: ignore[no-untyped-def]
        return "  All at once.  "


def test_reply_is_the_joined_stream_either_way() -> None:
    settings = Settings()
    streaming, whole = StreamingFake(settings), WholeFake(settings)
    assert list(streaming.stream([], GenerationOptions())) == ["Hello", " there", "."]
    assert streaming.reply([], GenerationOptions()) == "Hello there."
    assert list(whole.stream([], GenerationOptions())) == ["All at once."]
    assert whole.reply([], GenerationOptions()) == "All at once."
    with pytest.raises(TypeError, match="_stream or _reply"):
        type("Neither", (LLMBackend,), {"name": "neither"})
