"""Segments of a streamed reply: MPEG-TS copies for HLS, and the final MP4 assembled from them.

Both go through PyAV (which bundles FFmpeg's muxers and AAC encoder), like the
renderer, so no ``ffmpeg`` binary is needed.

* ``to_transport_stream`` remuxes a segment MP4 into MPEG-TS without re-encoding
  (the muxer converts H.264 to Annex B and AAC to ADTS itself).
* ``assemble`` joins the segments into one MP4. The video packets are copied
  (every segment starts with a keyframe and shares the encoder settings) with
  their timestamps shifted; the audio is re-encoded once from the segments'
  speech samples laid end to end, so AAC's per-file priming never puts a click
  or a gap at a seam. Each segment's speech is a whole number of frames long
  (``pad_to_frames``), so the audio and video stay in step across seams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from workers.animation.encoder import AAC_RATES


@dataclass(frozen=True)
class SegmentMedia:
    video: Path  # the segment's MP4
    speech: np.ndarray  # its speech, float32 mono, as rendered
    sample_rate: int


def pad_to_frames(samples: np.ndarray, sample_rate: int, fps: int) -> np.ndarray:
    """``samples`` followed by silence up to a whole number of video frames."""
    per_frame = Fraction(sample_rate, fps)
    frames = max(1, math.ceil(len(samples) / per_frame))
    target = int(round(frames * per_frame))
    if target <= len(samples):
        return samples
    return np.concatenate([samples, np.zeros(target - len(samples), dtype=samples.dtype)])


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
