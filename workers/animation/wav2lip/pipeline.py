"""One render's frames: mel windows and the face crop through the shared batcher, pasted back in order.

The portrait is a still photo, so every frame's network input has the same face
(masked and reference crop of the one image) and its own mel window. Frames go to
the batcher in chunks of ``chunk`` frames with at most ``depth`` chunks in flight,
so the render thread pastes and encodes one chunk while the network runs the next,
and a long render never holds more than ``depth * chunk`` frames of network data.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future
from typing import Iterator

import numpy as np

from workers.animation.wav2lip.batcher import FrameBatcher
from workers.animation.wav2lip.face import CropBox, CropOptions, face_input, feather_mask, paste_back


def lip_sync_frames(
    image: np.ndarray,
    box: CropBox,
    windows: np.ndarray,
    batcher: FrameBatcher,
    face_size: int,
    *,
    chunk: int,
    depth: int = 2,
    options: CropOptions = CropOptions(),
    timeout: float | None = None,
) -> Iterator[np.ndarray]:
    """Yield one BGR uint8 frame per mel window in ``windows`` (frames, 1, 80, 16).

    ``timeout`` bounds the wait for each chunk (``TimeoutError`` past it). Chunks still
    queued when the caller stops early are cancelled.
    """
    if chunk < 1 or depth < 1:
        raise ValueError(f"chunk and depth must be at least 1, got {chunk} and {depth}")
    face = face_input(image, box, face_size)
    mask = feather_mask(box, options)
    total = len(windows)
    waiting: deque[Future[np.ndarray]] = deque()
    submitted = 0

    def submit() -> None:
        nonlocal submitted
        end = min(total, submitted + chunk)
        faces = np.broadcast_to(face, (end - submitted, *face.shape))
        waiting.append(batcher.submit(windows[submitted:end], faces))
        submitted = end

    try:
        while submitted < total and len(waiting) < depth:
            submit()
        while waiting:
            generated = waiting.popleft().result(timeout)
            if submitted < total:
                submit()
            for out in generated:
                yield paste_back(image, box, out, mask)
    finally:
        for future in waiting:
            future.cancel()
