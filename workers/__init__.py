"""The four stages of talkfarm, one package each: ``asr``, ``llm``, ``tts``, ``animation``.

Each stage has a backend interface and its registry (``base.py``), its backends
(``backends/``, one file each), the preparation of its embedded models
(``prepare.py``) and a thin Celery task (``tasks.py``) that ``pipeline.runner``
runs. What a stage is (task, queue, shaping settings) is ``pipeline.stages``;
stages never import each other: what they hand on goes through ``contracts``.
"""
