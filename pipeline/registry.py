"""Backends by name, one file each, and their lifecycle.

Each stage owns one ``Registry``. Backend modules live in the stage's
``backends`` package and register themselves with ``@registry.register("name")``;
the registry imports that package the first time a name is looked up, so heavy
libraries load only in the worker that needs them (backends import them inside
``_load``). A backend kept outside the tree is one module named in the
``backend_modules`` setting (``TALKFARM_BACKEND_MODULES='["mypkg.mytts"]'``),
imported at the same moment.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Any, Callable, Generic, TypeVar

from contracts.errors import UnknownBackendError
from contracts.settings import get_settings

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → backend class. Unknown names raise listing the valid ones; duplicates raise."""

    def __init__(self, stage: str, package: str) -> None:
        self.stage = stage
        self._package = package
        self._classes: dict[str, type[T]] = {}
        self._discovered = False
        self._lock = threading.Lock()

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise ValueError(f"{self.stage} backend {name!r} is registered twice")
            self._classes[name] = cls
            setattr(cls, "name", name)
            return cls

        return decorate

    def _discover(self) -> None:
        with self._lock:
            if self._discovered:
                return
            package = importlib.import_module(self._package)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{self._package}.{module.name}")
            for name in get_settings().backend_modules:
                importlib.import_module(name)
            self._discovered = True

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        self._discover()
        try:
            return self._classes[name]
        except KeyError:
            valid = ", ".join(sorted(self._classes)) or "(none)"
            raise UnknownBackendError(
                f"unknown {self.stage} backend {name!r}; valid backends: {valid}"
            ) from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name)(*args, **kwargs)


class ModelLifecycle:
    """Idempotent, thread-safe ``load()`` around a backend's ``_load()``; ``unload()`` frees it."""

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def unload(self) -> None:
        with self._load_lock:
            if self._loaded:
                self._unload()
                self._loaded = False

    def check(self) -> None:
        """Raise ``ModelMissingError`` if model files are missing, without loading them.

        Cheap enough for a worker's parent process to call before it forks.
        """

    def _load(self) -> None:
        """Load model files; override in backends that have any."""

    def _unload(self) -> None:
        """Drop references to loaded models; override where there is more to free."""
