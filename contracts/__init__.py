"""What crosses process boundaries, shared by the coordinator, the pipeline, the stages and the caches.

The job payload that travels from stage to stage, the progress events, the errors
and their codes, the settings, the artifact store and its keys, the audio formats
the farm accepts, the timings document the TTS stage hands the animation stage,
the voices a job may name, and written text as the stages split and speak it.

Nothing here imports Celery or any other talkfarm package: this is the bottom
layer (import-linter contracts in ``setup.cfg`` keep it so).
"""
