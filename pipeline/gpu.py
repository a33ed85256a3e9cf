"""GPU memory and utilisation through NVML, for the ``/metrics`` of a worker that sees a GPU.

NVML (``nvidia-ml-py``, the ``gpu`` extra) reads the driver's counters without
creating a CUDA context, so the worker's main process may ask it (models and
CUDA stay in the pool processes). The GPUs reported are those the worker may
use: ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs) when set, else every GPU NVML
sees (in a Kubernetes pod, the ones the device plugin gave it). Without the
library, a driver or a GPU, ``detect`` returns None and no GPU metric exists.

    talkfarm_gpu_memory_used_bytes{stage,gpu}           the device's used memory (all processes)
    talkfarm_gpu_memory_total_bytes{stage,gpu}          the device's memory
    talkfarm_gpu_process_memory_used_bytes{stage,gpu}   the part this worker's processes hold
    talkfarm_gpu_utilization_ratio{stage,gpu}           busy fraction of the last sample period (0–1)
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterable

import psutil

log = logging.getLogger(__name__)


def _visible(count: int, nvml: Any) -> list[tuple[str, Any]]:
    """(label, handle) of each GPU this process may use."""
    handles = [(str(i), nvml.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
    wanted = os.environ.get("CUDA_VISIBLE_DEVICES")
    if wanted is None or wanted.strip() == "":
        return handles if wanted is None else []
    chosen = []
    for item in (part.strip() for part in wanted.split(",")):
        for index, handle in handles:
            uuid = nvml.nvmlDeviceGetUUID(handle)
            uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
            if item == index or (item.startswith("GPU-") and uuid.startswith(item)):
                chosen.append((index, handle))
    return chosen


class GpuCollector:
    def __init__(self, stage: str, nvml: Any, gpus: list[tuple[str, Any]]) -> None:
        self.stage = stage
        self._nvml = nvml
        self._gpus = gpus

    @classmethod
    def detect(cls, stage: str) -> "GpuCollector | None":
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
            gpus = _visible(pynvml.nvmlDeviceGetCount(), pynvml)
        except pynvml.NVMLError as e:
            log.debug("no GPU metrics: %s", e)
            return None
        if not gpus:
            return None
        log.info("GPU metrics for GPU %s", ", ".join(label for label, _ in gpus))
        return cls(stage, pynvml, gpus)

    def _own_pids(self) -> set[int]:
        me = psutil.Process()
        return {me.pid, *(child.pid for child in me.children(recursive=True))}

    @staticmethod
    def families() -> tuple[Any, Any, Any, Any]:
        """used, total, own, busy: the four families, empty."""
        from prometheus_client.core import GaugeMetricFamily

        labels = ["stage", "gpu"]
        return (GaugeMetricFamily("talkfarm_gpu_memory_used_bytes", "GPU memory in use (all processes)",
                                  labels=labels),
                GaugeMetricFamily("talkfarm_gpu_memory_total_bytes", "GPU memory", labels=labels),
                GaugeMetricFamily("talkfarm_gpu_process_memory_used_bytes",
                                  "GPU memory held by this worker's processes", labels=labels),
                GaugeMetricFamily("talkfarm_gpu_utilization_ratio",
                                  "Fraction of the last sample period the GPU was busy", labels=labels))

    def describe(self) -> Iterable[Any]:
        return self.families()

    def collect(self) -> Iterable[Any]:
        used, total, own, busy = self.families()
        nvml = self._nvml
        pids = self._own_pids()
        for label, handle in self._gpus:
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                processes = nvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except nvml.NVMLError as e:
                log.warning("cannot read GPU %s: %s", label, e)
                continue
            used.add_metric([self.stage, label], float(memory.used))
            total.add_metric([self.stage, label], float(memory.total))
            busy.add_metric([self.stage, label], rates.gpu / 100.0)
            own.add_metric([self.stage, label], float(sum(p.usedGpuMemory or 0 for p in processes if p.pid in pids)))
        yield from (used, total, own, busy)
