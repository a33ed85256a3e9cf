"""Every URL the API answers with, built in one place from the public base (``TALKFARM_PUBLIC_URL`` or the
address the request came in on)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Urls:
    base: str

    def job(self, job_id: str) -> str:
        return f"{self.base}/v1/jobs/{job_id}"

    def events(self, job_id: str) -> str:
        return f"{self.job(job_id)}/events"

    def video(self, job_id: str) -> str:
        return f"{self.job(job_id)}/video"

    def playlist(self, job_id: str) -> str:
        return f"{self.job(job_id)}/stream.m3u8"

    def segment(self, job_id: str, index: int, ext: str = "ts") -> str:
        return f"{self.job(job_id)}/segments/{index}.{ext}"

    def session(self, session_id: str) -> str:
        return f"{self.base}/v1/sessions/{session_id}"

    def avatar(self, avatar_id: str) -> str:
        return f"{self.base}/v1/avatars/{avatar_id}"

    def avatar_portrait(self, avatar_id: str) -> str:
        return f"{self.avatar(avatar_id)}/portrait"

    def job_links(self, job_id: str, session_id: str) -> dict[str, str]:
        """The ``urls`` object of a job."""
        return {"job": self.job(job_id), "events": self.events(job_id), "video": self.video(job_id),
                "session": self.session(session_id)}


def segment_path(index: int, ext: str = "ts") -> str:
    """A segment's URL relative to the job's playlist (HLS resolves it against the playlist's URL)."""
    return f"segments/{index}.{ext}"
