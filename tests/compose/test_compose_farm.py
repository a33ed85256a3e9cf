"""`docker compose up`, for real: the whole farm from its images answers chat, speak and lipsync jobs,
keeps Flower and its services inside, and survives a worker crash mid-job.

Run by ``scripts/compose-smoke.sh`` (which prepares the engine and the images, then runs
``pytest -m compose tests/compose``). The project is torn down (``down -v``) at the end, whatever happened.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
import wave
from pathlib import Path
from typing import Iterator

import av
import httpx
import pytest

from tests.compose.project import ComposeProject, wait_for

pytestmark = [pytest.mark.compose, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "tests" / "data" / "portrait.png"
STAGES = ("asr", "llm", "tts", "animation")
LONG_RUNNING = ["rabbitmq", "redis", "redis-cache", "postgres", "coordinator", "flower",
                *(f"worker-{stage}" for stage in STAGES)]
FPS = 25  # the animation stage's default frame rate
QUESTION = "What is the capital of France?"
LONG_SPEECH = " ".join([
    "Good morning, and welcome to the evening news from the farm.",
    "Today the weather was bright and clear over the hills, with a light wind from the west.",
    "The market opened early, and the bakers sold every loaf of bread before noon.",
    "Tomorrow will be cooler, so bring a warm coat if you walk along the river.",
    "That is all for tonight. Thank you for listening, and sleep well.",
])


def seconds_of(wav: bytes) -> float:
    with wave.open(io.BytesIO(wav)) as w:
        return w.getnframes() / w.getframerate()


def flite(text: str, target: Path) -> bytes:
    """Real speech, spoken by Debian's flite (the slt voice)."""
    if shutil.which("flite") is None:
        raise RuntimeError("flite is not installed (apt-get install flite; scripts/compose-smoke.sh does)")
    subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", str(target)], check=True, timeout=60)
    return target.read_bytes()


@pytest.fixture(scope="module")
def farm(request: pytest.FixtureRequest) -> Iterator[ComposeProject]:
    project = ComposeProject.from_env(ROOT)
    failed_before = request.session.testsfailed
    print(f"\n[compose] project {project.name}, coordinator on {project.url}, CLI {' '.join(project.command)}")
    try:
        start = time.monotonic()
        project.compose("up", "-d", timeout=2400)  # builds only what is missing
        project.wait_healthy(LONG_RUNNING, timeout=900)
        print(f"[compose] up and healthy in {time.monotonic() - start:.0f} s")
        yield project
    finally:
        if request.session.testsfailed > failed_before:
            print(project.logs(tail=80))
        project.compose("down", "-v", "--remove-orphans", timeout=600)
        print(f"[compose] {project.name} torn down (down -v)")


@pytest.fixture(scope="module")
def client(farm: ComposeProject) -> Iterator[httpx.Client]:
    """A client with an API key made inside the farm, as the README says (talkfarm-admin in the coordinator)."""
    made = farm.exec("coordinator", "talkfarm-admin", "keys", "create", "--name", "smoke", "--tier", "vip")
    token = next(line.split()[-1] for line in made.splitlines() if line.startswith("token"))
    with httpx.Client(base_url=farm.url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def submit(client: httpx.Client, mode: str, portrait: bytes | None = None, **fields: bytes | str) -> str:
    files = {"portrait": ("portrait.png", portrait or PORTRAIT.read_bytes())}
    audio = fields.pop("audio", None)
    if isinstance(audio, bytes):
        files["audio"] = ("speech.wav", audio)
    answer = client.post("/v1/jobs", data={"mode": mode, **fields}, files=files)
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def wait_job(client: httpx.Client, job_id: str, timeout: float = 600) -> dict:
    def ended() -> dict | None:
        job: dict = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(ended, timeout, f"job {job_id} ended", every=0.5)


def check_video(client: httpx.Client, job: dict, speech_seconds: float | None = None) -> str:
    """Fetch the job's MP4 and decode it: H.264 + AAC, faststart, as long as its speech (the TTS stage's,
    or ``speech_seconds`` of the audio a lipsync job was given), every frame there."""
    assert job["status"] == "succeeded" and not job["cached"], job  # rendered by the farm, not the cache
    answer = client.get(f"/v1/jobs/{job['job_id']}/video")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/mp4"
    data = answer.content
    moov, mdat = data.find(b"moov"), data.find(b"mdat")
    assert 0 <= moov < mdat, "the MP4 is not faststart"
    with av.open(io.BytesIO(data)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        codecs = (video.codec_context.name, audio.codec_context.name)
        width, height = video.codec_context.width, video.codec_context.height
        duration = float(container.duration or 0) / av.time_base
        frames = sum(1 for _ in container.decode(video=0))
    assert codecs == ("h264", "aac"), codecs
    speech = speech_seconds if speech_seconds is not None else float(job["speech_seconds"])
    assert 0.5 < duration < 120, duration
    assert abs(duration - speech) <= 0.25, (duration, speech)
    assert abs(frames - duration * FPS) <= 3, (frames, duration)
    return f"{len(data) // 1024} KiB, {codecs[0]} {width}x{height} {frames} frames + {codecs[1]}, {duration:.2f} s"


def large_portrait(side: int = 1280) -> bytes:
    """The test portrait scaled up, so that a render takes seconds, long enough to be interrupted."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(PORTRAIT).convert("RGB").resize((side, side), Image.Resampling.LANCZOS).save(buffer, "PNG")
    return buffer.getvalue()


def stage_status(job: dict, stage: str) -> str | None:
    return next((s["status"] for s in job["stages"] if s["stage"] == stage), None)


def test_the_farm_is_ready_and_only_the_coordinator_is_published(farm: ComposeProject, client: httpx.Client):
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"].values()) == {"ok"}, ready.json()
    migrate = farm.inspect("migrate")["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0), migrate
    published = {service: farm.published(service) for service in LONG_RUNNING}
    assert published.pop("coordinator") == [f"127.0.0.1:{farm.http_port}->8000/tcp"]
    assert not any(published.values()), published
    for stage in STAGES:
        print(f"[health] {farm.exec(f'worker-{stage}', 'talkfarm-health', stage).strip()}")
    print(f"[ready] /readyz {ready.json()}; migrate exited 0; only the coordinator is published "
          f"(127.0.0.1:{farm.http_port})")


def test_flower_sees_the_workers_from_inside_the_network_and_asks_for_a_login(farm: ComposeProject):
    script = ("import base64, json, os, urllib.error, urllib.request as u\n"
              "login = base64.b64encode(os.environ['FLOWER_BASIC_AUTH'].encode()).decode()\n"
              "def get(path, auth=True):\n"
              "    request = u.Request('http://127.0.0.1:5555' + path)\n"
              "    if auth: request.add_header('Authorization', 'Basic ' + login)\n"
              "    return json.load(u.urlopen(request, timeout=30))\n"
              "try:\n"
              "    get('/api/workers', auth=False); refused = False\n"
              "except urllib.error.HTTPError as e:\n"
              "    refused = e.code == 401\n"
              "print(json.dumps({'refused': refused, 'workers': sorted(get('/api/workers?refresh=1')),"
              " 'queues': get('/api/queues/length')}))\n")
    seen = json.loads(farm.exec("flower", "python", "-c", script, timeout=90))
    assert seen["refused"], "Flower answered its API without a login"
    nodes = {name.split("@")[0] for name in seen["workers"]}
    assert set(STAGES) <= nodes, seen
    queues = {q["name"] for q in seen["queues"]["active_queues"]}
    assert set(STAGES) <= queues, seen
    lengths = {q["name"]: q.get("messages", 0) for q in seen["queues"]["active_queues"]}
    print(f"[flower] workers {seen['workers']}; queue lengths {lengths}")


def test_speak(client: httpx.Client):
    job = wait_job(client, submit(client, "speak", text="Hello there. Welcome to the talking farm."))
    print(f"[speak] {job['status']} in {job['total_seconds']} s: {check_video(client, job)}")


def test_chat_from_real_speech(client: httpx.Client, tmp_path: Path):
    job = wait_job(client, submit(client, "chat", audio=flite(QUESTION, tmp_path / "question.wav")))
    video = check_video(client, job)
    assert "capital" in job["transcript"].lower() and "france" in job["transcript"].lower(), job["transcript"]
    assert job["detected_language"] == "en" and job["reply"].strip(), job
    print(f"[chat] {job['status']} in {job['total_seconds']} s: heard {job['transcript']!r}, "
          f"replied {job['reply']!r}: {video}")


def test_lipsync(client: httpx.Client, tmp_path: Path):
    speech = flite("Good morning to you all.", tmp_path / "speech.wav")
    job = wait_job(client, submit(client, "lipsync", audio=speech))
    print(f"[lipsync] {job['status']} in {job['total_seconds']} s: {check_video(client, job, seconds_of(speech))}")


def test_a_worker_killed_mid_job_comes_back_and_the_job_finishes(farm: ComposeProject, client: httpx.Client,
                                                                 tmp_path: Path):
    service = "worker-animation"
    speech = flite(LONG_SPEECH, tmp_path / "long.wav")
    job_id = submit(client, "lipsync", portrait=large_portrait(), audio=speech)

    def rendering() -> dict | None:
        job: dict = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running"), job
        return job if stage_status(job, "animation") == "running" else None

    wait_for(rendering, 300, f"job {job_id} rendering", every=0.1)
    before = farm.inspect(service)
    # A crash, as the kernel's OOM killer would do it: SIGKILL to the container's main process. (`docker
    # kill` would count as an operator's stop, after which Docker's restart policy does not restart it.)
    os.kill(int(before["State"]["Pid"]), signal.SIGKILL)
    killed_at = time.monotonic()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "running", f"the job ended before the worker was killed: {job}"
    print(f"[kill] SIGKILL to {service}'s main process (pid {before['State']['Pid']}) while it rendered job {job_id}")

    def restarted() -> dict | None:
        info = farm.inspect(service)
        return info if info["RestartCount"] > before["RestartCount"] and info["State"]["Running"] else None

    info = wait_for(restarted, 120, f"{service} restarted by its restart policy")
    farm.wait_healthy([service], timeout=600)
    print(f"[kill] {service} restarted (restart count {info['RestartCount']}, policy "
          f"{info['HostConfig']['RestartPolicy']['Name']}), healthy again "
          f"{time.monotonic() - killed_at:.0f} s after the kill")
    job = wait_job(client, job_id)
    # The render the killed worker had taken was redelivered to the restarted one (late acknowledgement).
    received = farm.logs(service, tail=1000).count(f"Task talkfarm.animation.render[{job_id}.animation] received")
    assert received == 2, f"the render task was received {received} times"
    animation = next(s for s in job["stages"] if s["stage"] == "animation")
    print(f"[kill] the render task was redelivered to the restarted worker; job {job['status']} in "
          f"{job['total_seconds']} s (animation attempts {animation['attempts']}): "
          f"{check_video(client, job, seconds_of(speech))}")
