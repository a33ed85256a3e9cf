"""The stage workers of talkfarm and the plumbing they share.

``workers.celery_app`` is the Celery application every stage uses; each stage
(``asr``, ``llm``, ``tts``, ``animation``) is a package with a backend interface
(``base.py``), its backends (``backends/``, one file each) and a thin task.
"""
