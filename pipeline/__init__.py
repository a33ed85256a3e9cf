"""The farm's machinery: how a job's stages are queued, run, streamed and handed on.

``stages`` is the one table of what a stage is; ``app`` the Celery application
configured from it; ``dispatch`` publishes stage tasks (the coordinator's way in,
with ``broker``, ``events`` and ``catalog``); ``runner`` runs one stage task
around a stage's work and hands the job on; ``ledger`` and ``cancel`` hold a
streamed job's segments and a job's cancel flag in the results Redis;
``registry`` and ``runtime`` load backends once per worker process; ``launch``
starts a worker for one stage. Imports ``contracts`` and ``cache``, never a
stage package by name: stages are found through the table.
"""
