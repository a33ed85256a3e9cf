"""The real farm end to end: chat, speak and lipsync produce a real talking video (repeats: test_farm_cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.stages import STAGE_NAMES as STAGES
from tests.conftest import wav_of
from tests.farm import Farm
from tests.media import ffprobe, keyframes, moov_before_mdat, mouth_motion, silent_runs, word_overlap

pytestmark = pytest.mark.e2e


def submit(farm: Farm, portrait: bytes, **form) -> dict:
    files = {"portrait": ("portrait.png", portrait)}
    if "audio" in form:
        files["audio"] = ("speech.wav", form.pop("audio"))
    with farm.client() as client:
        answer = client.post("/v1/jobs", data=form, files=files)
    assert answer.status_code == 202, answer.text
    return answer.json()


def fetch_video(farm: Farm, job_id: str, target: Path) -> Path:
    with farm.client() as client:
        answer = client.get(f"/v1/jobs/{job_id}/video")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/mp4"
    target.write_bytes(answer.content)
    return target


def check_video(video: Path, job: dict, portrait: bytes, model_settings) -> None:
    probe = ffprobe(video)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
    assert moov_before_mdat(video), "the MP4 is not faststart"
    assert abs(probe.duration - job["speech_seconds"]) <= 0.1, (probe.duration, job["speech_seconds"])

    motion, rms = mouth_motion(video, portrait)
    loud = rms > 0.05 * rms.max()
    assert motion[loud].mean() > 0.5, "the mouth does not move while the avatar speaks"
    # Quiet stretches long enough for the mouth to settle (release takes a few frames). Keyframes (every
    # 2 s, and the first frame of each streamed segment) are left out: re-encoding is not motion.
    key = keyframes(video)
    for run in silent_runs(rms, 0.01 * rms.max(), min_frames=10):
        settled = [i for i in list(run)[5:-1] if not key[i]]
        if settled:
            assert motion[settled].mean() < 0.5, f"the mouth moves in silence (frames {run})"


def heard(video: Path, model_settings) -> str:
    from tests.media import audio_track
    from workers.asr.base import registry

    asr = registry.create(model_settings.asr.backend, model_settings)
    return asr.transcribe(audio_track(video)).text


def test_chat_with_a_spoken_question(farm: Farm, portrait_bytes, speak, model_settings, tmp_path):
    question = speak("Hello! What is your favourite colour, and why do you like it?")
    answer = submit(farm, portrait_bytes, mode="chat", audio=question)
    job = farm.wait_job(answer["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert "colour" in job["transcript"].lower() or "color" in job["transcript"].lower()
    assert job["reply"]
    assert [s["stage"] for s in job["stages"]] == list(STAGES)
    assert all(s["status"] == "succeeded" and s["seconds"] > 0 for s in job["stages"])

    video = fetch_video(farm, job["job_id"], tmp_path / "chat.mp4")
    check_video(video, job, portrait_bytes, model_settings)
    overlap = word_overlap(job["reply"], heard(video, model_settings))
    assert overlap >= 0.8, (overlap, job["reply"])

    with farm.client() as client:
        session = client.get(f"/v1/sessions/{job['session_id']}").json()
    assert session["turns"][0]["reply"] == job["reply"]


def test_speak(farm: Farm, portrait_bytes, model_settings, tmp_path):
    text = "The quick brown fox jumps over the lazy dog. Then it takes a nap."
    job = farm.wait_job(submit(farm, portrait_bytes, mode="speak", text=text)["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert [s["stage"] for s in job["stages"]] == ["tts", "animation"]
    video = fetch_video(farm, job["job_id"], tmp_path / "speak.mp4")
    check_video(video, job, portrait_bytes, model_settings)
    assert word_overlap(text, heard(video, model_settings)) >= 0.8


def test_lipsync_keeps_the_mouth_still_in_silence(farm: Farm, portrait_bytes, speak, model_settings, tmp_path):
    from contracts.audio import decode_audio

    rate = 22_050
    first = decode_audio(speak("Good morning, everybody."), rate)
    second = decode_audio(speak("Let us begin the meeting now."), rate)
    audio = np.concatenate([first, np.zeros(rate, np.float32), second])
    job = farm.wait_job(submit(farm, portrait_bytes, mode="lipsync", audio=wav_of(audio, rate))["job_id"])
    assert job["status"] == "succeeded", job["error"]
    video = fetch_video(farm, job["job_id"], tmp_path / "lipsync.mp4")
    probe = ffprobe(video)
    assert abs(probe.duration - len(audio) / rate) <= 0.1
    check_video(video, {**job, "speech_seconds": len(audio) / rate}, portrait_bytes, model_settings)
    motion, rms = mouth_motion(video, portrait_bytes)
    runs = silent_runs(rms, 0.01 * rms.max(), min_frames=20)
    assert runs, "the one-second pause was not found in the video's audio"


def test_range_requests(farm: Farm, portrait_bytes):
    job = farm.wait_job(submit(farm, portrait_bytes, mode="speak", text="Ranges, please.")["job_id"])
    with farm.client() as client:
        whole = client.get(f"/v1/jobs/{job['job_id']}/video").content
        part = client.get(f"/v1/jobs/{job['job_id']}/video", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole[100:200]
