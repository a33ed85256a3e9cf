"""``talkfarm``: the command-line client.

    talkfarm submit --portrait p.png (--audio q.wav | --text "...") [--mode chat] [--session ID] -o out.mp4

Submits a job, shows stage progress from the event stream, and downloads the
video. Exits non-zero with the job's error code and message on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
from tqdm import tqdm

DEFAULT_URL = os.environ.get("TALKFARM_URL", "http://127.0.0.1:8000")


class ClientError(Exception):
    pass


def _sse(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    kind, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


def submit(args: argparse.Namespace) -> int:
    files: dict[str, Any] = {"portrait": (args.portrait.name, args.portrait.read_bytes())}
    form: dict[str, str] = {"mode": args.mode}
    if args.audio:
        files["audio"] = (args.audio.name, args.audio.read_bytes())
    if args.text is not None:
        form["text"] = args.text
    for key in ("session", "language", "voice"):
        if getattr(args, key):
            form["session_id" if key == "session" else key] = getattr(args, key)

    if not args.api_key:
        raise ClientError("no API key: set TALKFARM_API_KEY or pass --api-key (talkfarm-admin keys create)")
    headers = {"Authorization": f"Bearer {args.api_key}"}
    with httpx.Client(base_url=args.url, timeout=httpx.Timeout(30.0, read=args.timeout), headers=headers) as client:
        answer = client.post("/v1/jobs", data=form, files=files)
        body = answer.json()
        if answer.status_code != 202:
            raise ClientError(f"{body.get('code')}: {body.get('message')}")
        job_id = body["job_id"]
        print(f"job {job_id} (session {body['session_id']})", file=sys.stderr)
        if body["status"] != "succeeded":
            stages = len(client.get(f"/v1/jobs/{job_id}").json()["stages"])
            _follow(client, body["urls"]["events"], stages)
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] != "succeeded":
            error = job.get("error") or {}
            raise ClientError(f"job {job['status']}: {error.get('code')}: {error.get('message')}")
        for label, key in (("you", "transcript"), ("reply", "reply")):
            if job.get(key):
                print(f"{label}: {job[key]}", file=sys.stderr)
        with client.stream("GET", f"/v1/jobs/{job_id}/video") as video, args.output.open("wb") as out:
            video.raise_for_status()
            for chunk in video.iter_bytes():
                out.write(chunk)
    print(f"saved {args.output}{' (from cache)' if job.get('cached') else ''}", file=sys.stderr)
    return 0


def _follow(client: httpx.Client, events_url: str, stages: int) -> None:
    with client.stream("GET", events_url) as stream, tqdm(total=stages, unit="stage", file=sys.stderr) as bar:
        for kind, data in _sse(stream):
            if kind == "done":
                return
            if kind in ("started", "finished", "failed", "retrying"):
                bar.set_description(f"{data['stage']} {kind}")
            if kind == "finished":
                bar.update(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="talkfarm", description="talkfarm command-line client")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"coordinator URL (default {DEFAULT_URL})")
    parser.add_argument("--api-key", default=os.environ.get("TALKFARM_API_KEY", ""),
                        help="the API key's token (default: $TALKFARM_API_KEY)")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="submit a job and download its video")
    s.add_argument("--portrait", type=Path, required=True)
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--audio", type=Path)
    source.add_argument("--text")
    s.add_argument("--mode", default="chat", choices=("chat", "speak", "lipsync"))
    s.add_argument("--session", help="continue this session")
    s.add_argument("--language")
    s.add_argument("--voice")
    s.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the video")
    s.add_argument("-o", "--output", type=Path, default=Path("talkfarm.mp4"))
    args = parser.parse_args(argv)
    try:
        return submit(args)
    except (ClientError, httpx.HTTPError, OSError) as e:
        print(f"talkfarm: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
