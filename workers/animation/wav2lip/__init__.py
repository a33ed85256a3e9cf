"""The Wav2Lip lip-sync contract: mel windows and face crops in, the regenerated lower face out.

``mel``: Wav2Lip's 80-band mel spectrogram and its 16-step windows per video frame.
``face``: the face crop box from the 68 landmarks, the 6-channel network input and
the feathered paste-back. ``runner``: loading an operator-supplied network
(TorchScript or ONNX). ``batcher``: one inference thread per process that packs the
frames of every active render into shared batches. ``pipeline``: one render's frames,
from mel windows to pasted frames. ``reference_net``: randomly initialised networks
of the contract for tests and benchmarks (no weights). ``convert``: turns an original
Wav2Lip checkpoint into the files the backend loads.

Only ``runner``, ``reference_net`` and ``convert`` need torch or onnxruntime; the rest
needs numpy and OpenCV alone.
"""
