"""Worker health: markers of live processes only, and a node that must consume its stage's queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.settings import Settings
from pipeline import health, markers

pytestmark = pytest.mark.unit


@pytest.fixture
def settings() -> Settings:
    return Settings(queue_prefix="t1.")


def test_a_loaded_process_leaves_a_live_marker(tmp_path: Path, settings: Settings):
    markers.mark_loaded(["asr"], settings, tmp_path)
    [marker] = markers.read_markers("asr", settings, tmp_path)
    assert marker.pid == os.getpid() and marker.alive()
    assert marker.backends == tuple(settings.asr.backend_names())
    assert markers.read_markers("tts", settings, tmp_path) == []
    assert markers.read_markers("asr", Settings(queue_prefix="other."), tmp_path) == []


def test_markers_of_dead_processes_do_not_count_and_are_dropped(tmp_path: Path, settings: Settings):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = {"pid": dead_pid, "started": "1", "loaded_at": 0.0, "backends": ["faster-whisper"]}
    (tmp_path / f"t1.asr.{dead_pid}.json").write_text(json.dumps(stale))
    # A restarted container reuses PIDs: same PID, another start time.
    reused = {**stale, "pid": os.getpid(), "started": "0"}
    (tmp_path / f"t1.asr.{os.getpid()}.json").write_text(json.dumps(reused))
    assert [m.alive() for m in markers.read_markers("asr", settings, tmp_path)] == [False, False]
    with pytest.raises(RuntimeError, match="no process has loaded the asr models"):
        health.check("asr", settings, tmp_path)

    markers.mark_loaded(["asr"], settings, tmp_path)
    assert [(m.pid, m.alive()) for m in markers.read_markers("asr", settings, tmp_path)] == [(os.getpid(), True)]


def test_healthy_only_when_the_node_consumes_the_stage_queue(tmp_path: Path, settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch):
    markers.mark_loaded(["llm"], settings, tmp_path)
    asked: list[str] = []

    def answers(queues: set[str] | None):
        def consumed(node: str, timeout: float) -> set[str] | None:
            asked.append(node)
            return queues
        return consumed

    monkeypatch.setattr(health, "consumed_queues", answers({"t1.llm"}))
    assert "t1.llm@" in health.check("llm", settings, tmp_path) and "healthy" in health.check("llm", settings, tmp_path)
    assert asked[0] == health.node_name("llm", settings) and asked[0].startswith("t1.llm@")

    monkeypatch.setattr(health, "consumed_queues", answers({"t1.tts"}))
    with pytest.raises(RuntimeError, match="does not consume the queue t1.llm"):
        health.check("llm", settings, tmp_path)

    monkeypatch.setattr(health, "consumed_queues", answers(None))
    with pytest.raises(RuntimeError, match="did not answer"):
        health.check("llm", settings, tmp_path)


def test_the_command_exits_non_zero_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(health, "default_folder", lambda: tmp_path)
    assert health.main(["animation"]) == 1
    assert "no process has loaded the animation models" in capsys.readouterr().err
