"""The paste-back of ``face.paste_back`` in torch, on the network's device, for a batch of frames.

The numpy reference resizes the network's crop to the face box with OpenCV
(``INTER_CUBIC`` when the box is larger than the crop on either side, else
``INTER_AREA``), blends it into the portrait through the feathered mask and rounds
to uint8. Both OpenCV resizes are separable linear maps, so the resize here is two
matrix products, ``Wy @ crop @ Wx.T``, with ``Wy`` and ``Wx`` taken from OpenCV
itself (the resize of an identity matrix): the result is OpenCV's to float
rounding, on any box size, with no interpolation code of our own.

Everything that is the same for every frame of a render (the two matrices, the
portrait's face region as floats, the mask) is built once per render by
``PasteTarget``; a batch then costs a few kernels and gives the region as uint8
``(n, height, width, 3)`` BGR, ready to be copied back to the host and dropped
into the portrait (see ``encoder_pool``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from workers.animation.wav2lip.face import CropBox, feather_mask


def resize_matrices(size: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """``(Wy, Wx)``, float32 ``(height, size)`` and ``(width, size)``: OpenCV's resize of a size x size image.

    The interpolation is the reference's: cubic when either side grows, area otherwise.
    """
    growing = width > size or height > size
    flag = cv2.INTER_CUBIC if growing else cv2.INTER_AREA
    eye = np.eye(size, dtype=np.float32)
    rows = cv2.resize(eye, (size, height), interpolation=flag)  # only the rows resampled
    cols = cv2.resize(eye, (width, size), interpolation=flag)  # only the columns resampled
    return np.ascontiguousarray(rows), np.ascontiguousarray(cols.T)


def upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``array`` on ``device``, through pinned memory and without waiting when it is a GPU.

    A copy from pageable memory waits, on the host, for everything queued before it on the
    stream: in the render engine, for every batch the GPU had been given. Here the copy is
    queued behind them too, so whatever uses the tensor on that stream comes after it.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class PasteTarget:
    """One render's paste-back on ``device``: its face box in the portrait, mask and resize matrices."""

    def __init__(self, image: np.ndarray, box: CropBox, mask: np.ndarray, size: int, device: torch.device) -> None:
        if mask.shape[:2] != (box.height, box.width):
            raise ValueError(f"the mask is {mask.shape[:2]}, the box {box.height}x{box.width}")
        self.box = box
        self.size = size
        rows, cols = resize_matrices(size, box.width, box.height)
        region = image[box.top:box.bottom, box.left:box.right]
        self._rows = upload(rows, device)
        self._cols = upload(cols, device)
        # (3, h, w) float32 channels first, as the network's output is laid out.
        self._original = upload(region.transpose(2, 0, 1), device).float()
        self._mask = upload(mask[:, :, 0], device)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The region's host shape: (height, width, 3)."""
        return self.box.height, self.box.width, 3

    def paste(self, faces: torch.Tensor) -> torch.Tensor:
        """``faces`` (n, 3, S, S) in [0, 1] (any float dtype) → the blended region, uint8 (n, h, w, 3)."""
        generated = faces.float().clamp(0.0, 1.0) * 255.0
        # (h, S) @ (n, 3, S, S) @ (S, w): the resize of every channel of every frame.
        resized = torch.matmul(torch.matmul(self._rows, generated), self._cols.t())
        blended = self._original + self._mask * (resized - self._original)
        # Where the mask is 0 this gives back the original value exactly (x + 0.5, truncated).
        out = blended.add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
        return out.permute(0, 2, 3, 1).contiguous()


def paste_batch(image: np.ndarray, box: CropBox, faces: np.ndarray, size: int,
                mask: np.ndarray | None = None, device: str = "cpu") -> np.ndarray:
    """The regions for ``faces`` (n, 3, S, S) as numpy uint8 (n, h, w, 3): a convenience for tests and benches."""
    target = PasteTarget(image, box, feather_mask(box) if mask is None else mask, size, torch.device(device))
    with torch.inference_mode():
        return target.paste(torch.from_numpy(faces).to(device)).cpu().numpy()
