"""The animation stage's half of sentence streaming: a rendered segment finished, the segments joined.

A sentence of a streamed reply reaches this stage as its own subtask
(``segment`` on the payload). ``finish_segment`` remuxes its MP4 to MPEG-TS for
the HLS playlist and reports it as landed (the runner records it in the ledger);
once every segment has landed, the ``assemble`` task (``assemble_job``) joins
them into the job's MP4 and stores it under the request's cache key. The
reply of a streamed ``chat`` job is its segments' sentences joined (each a text
artifact, ``contracts.job_texts``), stored as a text artifact of its own.

Both go through PyAV (which bundles FFmpeg's muxers and AAC encoder), like the
renderer, so no ``ffmpeg`` binary is needed.

* ``to_transport_stream`` remuxes a segment MP4 into MPEG-TS without re-encoding
  (the muxer converts H.264 to Annex B and AAC to ADTS itself).
* ``assemble`` joins the segments into one MP4. The video packets are copied
  (every segment starts with a keyframe and shares the encoder settings) with
  their timestamps shifted; the audio is re-encoded once from the segments'
  speech samples laid end to end, so AAC's per-file priming never puts a click
  or a gap at a seam. Each segment's speech is a whole number of frames long
  (``contracts.audio.pad_to_frames``), so the audio and video stay in step across seams.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from cache.store import video_cache
from contracts.artifacts import ArtifactStore
from contracts.audio import decode_audio
from contracts.errors import TransientError
from contracts.events import TEXTS
from contracts.job_texts import JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings
from pipeline.ledger import Segment, ledger_for
from pipeline.runner import Outcome
from workers.animation.encoder import AAC_RATES, SPEECH_RATE


@dataclass(frozen=True)
class SegmentMedia:
    video: Path  # the segment's MP4
    speech: np.ndarray  # its speech, float32 mono, as rendered
    sample_rate: int


def to_transport_stream(mp4: Path, ts: Path) -> None:
    """Remux a segment MP4 into MPEG-TS (stream copy, no re-encoding)."""
    tmp = ts.with_name(ts.name + ".part")
    with av.open(str(mp4)) as source, av.open(str(tmp), mode="w", format="mpegts") as target:
        streams = {s.index: target.add_stream_from_template(s) for s in source.streams if s.type in ("video", "audio")}
        for packet in source.demux(*[source.streams[i] for i in streams]):
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            target.mux(packet)
    tmp.replace(ts)


def assemble(segments: Sequence[SegmentMedia], output: Path) -> float:
    """Join ``segments`` into one faststart MP4 at ``output``; returns its duration in seconds."""
    if not segments:
        raise ValueError("nothing to assemble")
    rate = segments[0].sample_rate
    if any(s.sample_rate != rate for s in segments):
        raise ValueError("all segments must share one sample rate")
    tmp = output.with_name(output.name + ".part")
    video_end = Fraction(0)
    with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as target:
        video_out = None
        sound = target.add_stream("aac", rate=rate if rate in AAC_RATES else 44100, layout="mono")
        audio_sent = 0
        for segment in segments:
            with av.open(str(segment.video)) as source:
                video_in = source.streams.video[0]
                if video_out is None:
                    video_out = target.add_stream_from_template(video_in)
                time_base = video_in.time_base
                assert time_base is not None
                shift = int(video_end / time_base)
                last_end = Fraction(0)
                for packet in source.demux(video_in):
                    if packet.dts is None or packet.pts is None:
                        continue
                    end = (packet.pts + (packet.duration or 0)) * time_base
                    last_end = max(last_end, end)
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = video_out
                    target.mux(packet)
                video_end += last_end
            speech = np.ascontiguousarray(segment.speech, dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(speech[np.newaxis, :], format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = audio_sent
            frame.time_base = Fraction(1, rate)
            target.mux(sound.encode(frame))
            audio_sent += len(speech)
        target.mux(sound.encode(None))
    tmp.replace(output)
    return float(max(video_end, Fraction(audio_sent, rate)))


def finish_segment(job: JobPayload, video_key: str, speech_key: str, seconds: float,
                   store: ArtifactStore) -> Outcome:
    """The end of a segment's animation: its MPEG-TS copy, and the segment reported as landed."""
    assert job.segment is not None
    with store.scratch_dir() as scratch:
        ts_path = Path(scratch) / "segment.ts"
        to_transport_stream(store.path(video_key), ts_path)
        ts = store.put_file(ts_path, "ts")
    segment = Segment(index=job.segment, video_key=video_key, speech_key=speech_key, seconds=round(seconds, 3),
                      text_key=job.segment_text_key)
    return Outcome(summary={"video_key": video_key, "ts_key": ts.key, "seconds": segment.seconds},
                   segment=segment, segment_data={"ts_key": ts.key})


def assemble_job(job: JobPayload, settings: Settings) -> Outcome:
    """Join the landed segments of a streamed job into its MP4 (the work of the ``assemble`` task)."""
    store = ArtifactStore(settings.artifact_dir)
    ledger = ledger_for(settings)
    segments = ledger.segments(job.job_id)
    total = ledger.total(job.job_id)
    if total is None or [s.index for s in segments] != list(range(total)):
        raise TransientError(f"{len(segments)} of {total} segments have landed", code="segments_missing")
    with store.scratch_dir() as scratch:
        output = Path(scratch) / "final.mp4"
        media = [SegmentMedia(video=store.path(s.video_key),
                              speech=decode_audio(store.path(s.speech_key), SPEECH_RATE),
                              sample_rate=SPEECH_RATE) for s in segments]
        seconds = assemble(media, output)
        video = store.put_file(output, "mp4")
    texts = JobTexts(store, job.context_key)
    reply = None
    # A segment landed by a worker of the previous version names no text: the LLM stage's reply stands then.
    if job.mode == "chat" and all(s.text_key is not None for s in segments):
        reply = " ".join(texts.read(s.text_key) or "" for s in segments)
    reply_key = texts.put(reply) if reply is not None else None
    summary = {"video_key": video.key, "video_seconds": round(seconds, 3), "speech_seconds": round(seconds, 3),
               "segments": len(segments)}
    if job.cache_key:
        video_cache(settings).put_media(job.cache_key, store.read_bytes(video.key),
                                        {**summary, "transcript": texts.read(job.transcript_key), "reply": reply})
    return Outcome(summary={**summary, TEXTS: {"transcript": job.transcript_key, "reply": reply_key}},
                   payload=job.with_outputs(video_key=video.key, reply_key=reply_key))
