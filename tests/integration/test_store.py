"""The job store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from contracts.artifacts import ArtifactStore
from contracts.job_texts import JobContext, JobTexts
from contracts.payload import JobPayload
from contracts.settings import Settings
from coordinator.erasure import Eraser
from coordinator.maintenance import Maintenance
from coordinator.store import migrate, repo
from coordinator.store.models import ArtifactRow, AvatarRow, EventRow, JobRow, SessionRow
from coordinator.store.repo import JobStore, make_engine
from pipeline.events import JobEvent
from tests.farm import RESULTS_URL

pytestmark = pytest.mark.integration

PG_ADMIN_URL = os.environ.get("TALKFARM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
KEY = "b" * 64 + ".png"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
        yield JobStore(engine)
        engine.dispose()
        return
    name = f"talkfarm_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield JobStore(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_schema_is_created_by_the_command_not_by_accident(store):
    with pytest.raises(migrate.SchemaError, match="talkfarm-admin db upgrade"):
        migrate.check(store.engine)
    assert migrate.upgrade(store.engine) == (0, migrate.CURRENT_VERSION)
    assert migrate.upgrade(store.engine) == (migrate.CURRENT_VERSION, migrate.CURRENT_VERSION)
    migrate.check(store.engine)


def event(job_id: str, stage: str, kind: str, **data) -> JobEvent:
    return JobEvent(job_id=job_id, session_id="s", stage=stage, kind=kind, seconds=0.5, data=data)


def test_a_job_through_its_events(store):
    migrate.upgrade(store.engine)
    session_id, job_id = str(uuid.uuid4()), str(uuid.uuid4())
    store.create_job(JobRow(id=job_id, session_id=session_id, mode="chat", portrait_key=KEY),
                     ["asr", "llm", "tts", "animation"], [ArtifactRow(key=KEY, kind="portrait", size=3)])
    assert store.get_job(job_id)[0].status == "queued"
    for ev in [event(job_id, "asr", "started", attempt=1),
               event(job_id, "asr", "finished", transcript="what is my name", language="en"),
               event(job_id, "llm", "started"), event(job_id, "llm", "finished", reply="You are Bob."),
               event(job_id, "tts", "finished", speech_seconds=1.25),
               event(job_id, "animation", "finished", video_key="c" * 64 + ".mp4", video_seconds=1.24),
               event(job_id, "animation", "completed")]:
        assert store.apply_event(ev)
    job, stages = store.get_job(job_id)
    assert (job.status, job.transcript, job.reply, job.speech_seconds) == \
        ("succeeded", "what is my name", "You are Bob.", 1.25)
    assert [s.status for s in stages] == ["succeeded", "succeeded", "succeeded", "succeeded"]
    assert store.history(session_id, 6) == [{"role": "user", "content": "what is my name"},
                                            {"role": "assistant", "content": "You are Bob."}]
    assert len(store.events_after(job_id, 0)) == 7


def test_failure_skips_the_later_stages_and_sticks(store):
    migrate.upgrade(store.engine)
    job_id = str(uuid.uuid4())
    store.create_job(JobRow(id=job_id, session_id=str(uuid.uuid4()), mode="speak", portrait_key=KEY),
                     ["tts", "animation"], [])
    store.apply_event(event(job_id, "tts", "failed", code="unknown_voice", message="no such voice"))
    store.apply_event(event(job_id, "animation", "completed"))  # late or duplicated: ignored for status
    job, stages = store.get_job(job_id)
    assert (job.status, job.error_code) == ("failed", "unknown_voice")
    assert [s.status for s in stages] == ["failed", "skipped"]


def test_a_cancel_between_reading_and_writing_an_event_is_not_overwritten(store, monkeypatch):
    """A worker's ``started`` event read the job as queued; a client's cancel tries to land before the event
    is written. Whichever goes first, the job ends ``cancelled``, never back to ``running``."""
    migrate.upgrade(store.engine)
    job_id = str(uuid.uuid4())
    store.create_job(JobRow(id=job_id, session_id=str(uuid.uuid4()), mode="speak", portrait_key=KEY),
                     ["tts", "animation"], [])
    insert = repo._insert_ignoring_duplicates
    cancelled: list[bool] = []
    done = threading.Event()

    def cancel() -> None:
        cancelled.append(store.mark_cancelled(job_id))
        done.set()

    racer = threading.Thread(target=cancel)

    def insert_after_a_cancel(s, model, values, key):
        if model is EventRow and not racer.is_alive() and not done.is_set():
            racer.start()
            done.wait(2.0)  # the cancel lands here unless the event's transaction holds the job
        return insert(s, model, values, key)

    monkeypatch.setattr(repo, "_insert_ignoring_duplicates", insert_after_a_cancel)
    store.apply_event(event(job_id, "tts", "started", attempt=1))
    racer.join(30)
    job, stages = store.get_job(job_id)
    assert cancelled == [True]
    assert (job.status, job.error_code) == ("cancelled", "cancelled")
    assert [s.status for s in stages] == ["cancelled", "cancelled"]


def test_a_cancel_after_the_job_succeeded_does_not_undo_it(store):
    migrate.upgrade(store.engine)
    job_id = str(uuid.uuid4())
    store.create_job(JobRow(id=job_id, session_id=str(uuid.uuid4()), mode="speak", portrait_key=KEY),
                     ["tts"], [])
    store.apply_event(event(job_id, "tts", "finished", speech_seconds=1.0))
    store.apply_event(event(job_id, "tts", "completed"))
    assert not store.mark_cancelled(job_id)
    assert store.get_job(job_id)[0].status == "succeeded"


def test_events_of_unknown_jobs_are_not_stored(store):
    migrate.upgrade(store.engine)
    assert not store.apply_event(event(str(uuid.uuid4()), "asr", "started"))
    assert store.counts()["job_events"] == 0


def test_sessions_carry_a_persona_and_avatars_are_saved(store):
    migrate.upgrade(store.engine)
    avatar_id, session_id = str(uuid.uuid4()), str(uuid.uuid4())
    store.create_avatar(AvatarRow(id=avatar_id, portrait_key=KEY), ArtifactRow(key=KEY, kind="portrait", size=3))
    store.create_avatar(AvatarRow(id=str(uuid.uuid4()), portrait_key=KEY),
                        ArtifactRow(key=KEY, kind="portrait", size=3))  # the same portrait saved twice
    assert store.get_avatar(avatar_id).portrait_key == KEY
    assert store.get_avatar(str(uuid.uuid4())) is None
    store.create_session(SessionRow(id=session_id, system_prompt="You are Max.", voice="slt", avatar_id=avatar_id))
    row = store.get_session(session_id)
    assert (row.system_prompt, row.voice, row.avatar_id) == ("You are Max.", "slt", avatar_id)
    assert store.counts()["avatars"] == 2 and store.counts()["artifacts"] == 1


def test_upgrade_from_version_2_adds_avatars(store):
    migrate.upgrade(store.engine)
    # Back to the version 2 schema: no avatars table, no sessions.avatar_id.
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE avatars"))
        conn.execute(text("ALTER TABLE sessions DROP COLUMN avatar_id"))
        conn.execute(text("DELETE FROM schema_version WHERE version > 2"))
    session_id = str(uuid.uuid4())
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO sessions (id, created_at, system_prompt) VALUES (:id, :at, 'old')"),
                     {"id": session_id, "at": datetime.now(timezone.utc)})
    with pytest.raises(migrate.SchemaError):
        migrate.check(store.engine)
    assert migrate.upgrade(store.engine) == (2, migrate.CURRENT_VERSION)
    migrate.check(store.engine)
    row = store.get_session(session_id)
    assert (row.system_prompt, row.avatar_id) == ("old", None)
    store.create_avatar(AvatarRow(id=str(uuid.uuid4()), portrait_key=KEY),
                        ArtifactRow(key=KEY, kind="portrait", size=3))


def test_upgrade_from_version_3_adds_the_spoken_forms(store):
    migrate.upgrade(store.engine)
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE jobs DROP COLUMN spoken_text"))
        conn.execute(text("ALTER TABLE jobs DROP COLUMN spoken_reply"))
        conn.execute(text("DELETE FROM schema_version WHERE version > 3"))
    with pytest.raises(migrate.SchemaError):
        migrate.check(store.engine)
    assert migrate.upgrade(store.engine) == (3, migrate.CURRENT_VERSION)
    job_id = str(uuid.uuid4())
    store.create_job(JobRow(id=job_id, session_id=str(uuid.uuid4()), mode="speak", portrait_key=KEY,
                            text="Dr. Smith paid $5.", spoken_text="Doctor Smith paid five dollars."), ["tts"], [])
    store.apply_event(event(job_id, "llm", "finished", reply="**Hi!** 😀", spoken_reply="Hi!"))
    job, _ = store.get_job(job_id)
    assert (job.text, job.spoken_text) == ("Dr. Smith paid $5.", "Doctor Smith paid five dollars.")
    assert (job.reply, job.spoken_reply) == ("**Hi!** 😀", "Hi!")


def test_deleting_a_session_removes_its_text_artifacts_and_keeps_what_others_name(store, tmp_path):
    """A job's texts are artifacts named by its dispatch (context, sentences) and by its events (``texts``):
    erasing the session removes them, except a file that another session's job names too."""
    migrate.upgrade(store.engine)
    artifacts = ArtifactStore(tmp_path / "artifacts")

    def job_with_texts(session_id: str, also: list[str] | None = None) -> list[str]:
        texts = JobTexts(artifacts, JobTexts.write_context(artifacts, JobContext.new("Forget me. Please.")))
        sentences = [texts.put("Forget me."), texts.put("Please.")]
        job_id = str(uuid.uuid4())
        payload = JobPayload(job_id=job_id, session_id=session_id, mode="speak", plan=["tts", "animation"],
                             portrait_key=KEY, context_key=texts.context_key, stream=True)
        store.create_job(JobRow(id=job_id, session_id=session_id, mode="speak", portrait_key=KEY,
                                dispatch={"payload": payload.model_dump(mode="json"),
                                          "sentence_keys": sentences + (also or [])}), ["tts", "animation"], [])
        spoken = texts.put("Forget me, said.")
        store.apply_event(event(job_id, "tts", "finished", segment=0, texts={"segment_spoken_text": spoken}))
        return [texts.context_key or "", *sentences, spoken]

    my_session = str(uuid.uuid4())
    mine = job_with_texts(my_session)
    shared = mine[1]
    theirs = job_with_texts(str(uuid.uuid4()), also=[shared])
    assert all(artifacts.exists(key) for key in mine + theirs)
    assert store.still_named([shared, mine[0]]) == {shared, mine[0]}

    erased = Eraser(store, artifacts, {}).session(my_session)
    assert erased.jobs == 1 and erased.files == 3
    assert [artifacts.exists(key) for key in mine] == [False, True, False, False]  # another job names the sentence
    assert all(artifacts.exists(key) for key in theirs)


class NoCache:
    def contains(self, key: str) -> bool:
        return False


def test_retention_removes_the_text_artifacts_of_jobs_long_ended(store, tmp_path):
    """Text artifacts are named by no job column: they go as orphans after ``job_days + orphan_hours``, with the
    rows that registered them, while those of a job that runs stay."""
    migrate.upgrade(store.engine)
    settings = Settings(data_dir=tmp_path, redis={"results_url": RESULTS_URL})
    artifacts = ArtifactStore(settings.artifact_dir)
    now = datetime.now(timezone.utc)
    long_ago = now - timedelta(days=settings.retention.job_days, hours=settings.retention.orphan_hours + 1)

    def job_with_texts(finished_at: datetime | None) -> list[str]:
        context = JobContext.new("Keep this for a while.")
        context_key = JobTexts.write_context(artifacts, context)
        reply = JobTexts(artifacts, context_key, context).put("For a while, then no more.")
        job_id = str(uuid.uuid4())
        store.create_job(JobRow(id=job_id, session_id=str(uuid.uuid4()), mode="chat", portrait_key=KEY,
                                status="succeeded" if finished_at else "running", finished_at=finished_at,
                                dispatch={"payload": {"context_key": context_key}}),
                         ["llm"], [ArtifactRow(key=context_key, kind="context", size=1)])
        store.apply_event(event(job_id, "llm", "finished", texts={"reply": reply}))
        return [context_key, reply]

    ended = job_with_texts(long_ago)
    for key in ended:
        os.utime(artifacts.path(key), (long_ago.timestamp(), long_ago.timestamp()))
    running = job_with_texts(None)
    report = Maintenance(settings, store, artifacts, NoCache()).retain(now)
    assert report.jobs == 1 and report.artifacts == 2
    assert [artifacts.exists(key) for key in ended + running] == [False, False, True, True]
    assert store.counts()["artifacts"] == 1  # the ended job's context row went with its file
