"""The embedded LLM for real: SmolLM2-135M-Instruct converted from GGUF, loaded and asked.

SmolLM2-135M is tiny. Greedy decoding makes it deterministic, but it cannot
answer "What is my name?" from the history: it takes "my" for its own name and
invents one ("I'm Emily."), whatever the system prompt. It does use a name from
the history when asked to greet the user by name, which is what the multi-turn
tests ask; without the history the name never appears. The last test holds a
whole conversation through the farm's HTTP API: a saved avatar, a session with a
persona (an assistant named Max) and two chat turns.
"""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest

from contracts.errors import ModelMissingError
from contracts.payload import Turn
from contracts.settings import LLMSettings, Settings
from contracts.text.spoken import to_spoken
from coordinator.store.repo import JobStore, make_engine
from tests.farm import Farm
from workers.llm import prepare as llm_prepare
from workers.llm.backends.transformers_llm import TransformersLLM
from workers.llm.base import GenerationOptions, registry
from workers.llm.text import build_messages

pytestmark = pytest.mark.e2e

ENGLISH_WORDS = {"i", "i'm", "you", "the", "a", "to", "and", "is", "am", "it", "my", "your", "of", "in", "fine"}


@pytest.fixture(scope="session")
def llm_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose (temporary) model folder holds the converted SmolLM2."""
    settings = Settings(model_dir=tmp_path_factory.mktemp("llm-models"))
    llm_prepare.prepare(settings)
    return settings


@pytest.fixture(scope="session")
def llm(llm_settings: Settings) -> TransformersLLM:
    backend = registry.create(llm_settings.llm.backend, llm_settings)
    assert isinstance(backend, TransformersLLM)
    backend.load()
    return backend


def ask(llm: TransformersLLM, text: str, history: list[Turn] | None = None, **options: object) -> str:
    llm_options = llm.settings.llm
    messages = build_messages(llm_options.system_prompt, history or [], text, llm_options.history_turns)
    merged = {"max_new_tokens": llm_options.max_new_tokens, **options}
    generation = GenerationOptions(**merged)  # type: ignore[arg-type]
    return llm.reply(messages, generation)


def test_prepared_folder_is_complete(llm_settings: Settings) -> None:
    folder = llm_prepare.target_dir(llm_settings)
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json"} <= names
    assert "quantization_config" not in (folder / "config.json").read_text()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_prepare_skips_a_present_model(llm_settings: Settings) -> None:
    weights = llm_prepare.target_dir(llm_settings) / "model.safetensors"
    before = weights.stat().st_mtime_ns
    start = time.perf_counter()
    assert llm_prepare.prepare(llm_settings) == [llm_prepare.target_dir(llm_settings)]
    assert time.perf_counter() - start < 1.0
    assert weights.stat().st_mtime_ns == before


def test_prepare_replaces_an_incomplete_folder(tmp_path) -> None:
    settings = Settings(model_dir=tmp_path)
    target = llm_prepare.target_dir(settings)
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert llm_prepare.prepare(settings) == [target]
    assert (target / "model.safetensors").is_file() and (target / "chat_template.jinja").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # the old folder is gone too


def test_tokenizer_has_chatml_template(llm: TransformersLLM) -> None:
    prompt = llm._tokenizer.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}],
        add_generation_prompt=True, tokenize=False,
    )
    assert prompt == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_missing_model_names_the_prepare_command(tmp_path) -> None:
    backend = TransformersLLM(Settings(model_dir=tmp_path))
    with pytest.raises(ModelMissingError, match="talkfarm-admin models prepare"):
        backend.check()
    with pytest.raises(ModelMissingError, match="talkfarm-admin models prepare"):
        backend.reply([Turn(role="user", content="Hi")], GenerationOptions())


def test_absolute_model_path(llm_settings: Settings, tmp_path) -> None:
    path = llm_prepare.target_dir(llm_settings)
    settings = Settings(model_dir=tmp_path, llm=LLMSettings(model=str(path)))
    TransformersLLM(settings).check()


def test_answers_in_english(llm: TransformersLLM) -> None:
    reply = ask(llm, "How are you today?")
    spoken = to_spoken(reply, "en").text
    assert spoken, reply
    words = set(re.findall(r"[a-z']+", spoken.lower()))
    assert words & ENGLISH_WORDS, reply
    assert sum(c.isascii() for c in spoken) / len(spoken) > 0.95
    stats = llm.last_stats
    assert stats is not None and 0 < stats.new_tokens <= llm.settings.llm.max_new_tokens


def test_greedy_is_deterministic(llm: TransformersLLM) -> None:
    first = ask(llm, "Can you give me a tip for sleeping better?")
    assert first
    assert ask(llm, "Can you give me a tip for sleeping better?") == first


@pytest.mark.parametrize(
    "acknowledgement", ["Nice to meet you, Alice!", "Nice to meet you, Alice. How can I help you today?"]
)
def test_remembers_the_users_name(llm: TransformersLLM, acknowledgement: str) -> None:
    history = [Turn(role="user", content="My name is Alice."), Turn(role="assistant", content=acknowledgement)]
    reply = ask(llm, "Please greet me by my name.", history, max_new_tokens=24)
    assert "Alice" in reply, reply


def test_without_history_the_name_is_unknown(llm: TransformersLLM) -> None:
    assert "Alice" not in ask(llm, "Please greet me by my name.", max_new_tokens=24)


def test_stop_strings_and_token_limit(llm: TransformersLLM) -> None:
    reply = ask(llm, "Tell me about yourself.", stop=(".", "!"))
    assert reply and "." not in reply and "!" not in reply
    short = ask(llm, "Tell me about yourself.", max_new_tokens=5)
    assert llm.last_stats is not None and llm.last_stats.new_tokens <= 5
    assert 0 < len(short.split()) <= 5


def test_sampling_runs(llm: TransformersLLM) -> None:
    assert ask(llm, "Tell me a joke.", temperature=0.8, top_p=0.9, max_new_tokens=20)


def test_stream_yields_deltas_that_join_to_the_reply(llm: TransformersLLM) -> None:
    llm_options = llm.settings.llm
    messages = build_messages(llm_options.system_prompt, [], "Can you give me a tip for sleeping better?", 6)
    options = GenerationOptions(max_new_tokens=30)
    started = time.perf_counter()
    stream = llm.stream(messages, options)
    first = next(stream)
    first_at = time.perf_counter() - started
    deltas = [first, *stream]
    total = time.perf_counter() - started
    assert len(deltas) >= 5 and all(deltas)
    assert first_at < total / 2  # the first words come long before the last
    assert "".join(deltas) == llm.reply(messages, options)
    stats = llm.last_stats
    assert stats is not None and stats.first_token_seconds is not None and stats.batch_size == 1


def test_batched_replies_equal_one_at_a_time(llm: TransformersLLM, llm_settings: Settings) -> None:
    questions = ["How are you today?", "What is the capital of France?", "Tell me a joke.",
                 "Can you give me a tip for sleeping better?"]
    options = GenerationOptions(max_new_tokens=16)
    llm_options = llm_settings.llm
    prompts = [build_messages(llm_options.system_prompt, [], q, 6) for q in questions]
    alone = [llm.reply(p, options) for p in prompts]
    batched_settings = llm_settings.model_copy(
        update={"llm": llm_options.model_copy(update={"max_batch_size": 4, "batch_window_ms": 200.0})})
    batched = TransformersLLM(batched_settings)
    batched.load()
    together: dict[int, str] = {}
    barrier = threading.Barrier(len(prompts))

    def ask_in_thread(index: int) -> None:
        barrier.wait()
        together[index] = batched.reply(prompts[index], options)

    threads = [threading.Thread(target=ask_in_thread, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    batched.unload()
    assert [together[i] for i in range(len(prompts))] == alone
    assert max(batched.batcher.batch_sizes) > 1  # the point: they ran together


PERSONA = "You are a cheerful assistant named Max. Give short, direct answers in one to three sentences."


def test_a_session_with_a_persona_remembers_the_users_name(farm: Farm, portrait_bytes: bytes) -> None:
    with farm.client() as client:
        saved = client.post("/v1/avatars", files={"portrait": ("me.png", portrait_bytes, "image/png")})
        assert saved.status_code == 201, saved.text
        avatar_id = saved.json()["avatar_id"]
        assert client.get(f"/v1/avatars/{avatar_id}").json()["avatar_id"] == avatar_id
        assert client.get(f"/v1/avatars/{avatar_id}/portrait").content == portrait_bytes
        unknown = str(uuid.uuid4())
        assert client.get(f"/v1/avatars/{unknown}").json()["code"] == "avatar_not_found"
        refused = client.post("/v1/sessions", json={"avatar": unknown})
        assert (refused.status_code, refused.json()["code"]) == (404, "avatar_not_found")
        refused = client.post("/v1/jobs", data={"mode": "speak", "text": "Hi.", "avatar": "not-a-uuid"})
        assert (refused.status_code, refused.json()["code"]) == (422, "bad_avatar")

        created = client.post("/v1/sessions", json={"system_prompt": PERSONA, "avatar": avatar_id})
        assert created.status_code == 201, created.text
        session_id = created.json()["session_id"]
        assert client.get(f"/v1/sessions/{session_id}").json()["persona"] == {
            "system_prompt": PERSONA, "voice": None, "avatar": avatar_id}

        # No portrait on either turn: the session's avatar is the face, its persona the prompt.
        replies = []
        for question in ("My name is Alice.", "Please greet me by my name."):
            answer = client.post("/v1/jobs", data={"mode": "chat", "text": question, "session_id": session_id})
            assert answer.status_code == 202, answer.text
            job = farm.wait_job(answer.json()["job_id"])
            assert job["status"] == "succeeded", job["error"]
            replies.append(job["reply"])
        assert "Alice" in replies[1], replies
        assert "Max" in replies[1], replies  # the persona's name: the session's system prompt reached the model
        turns = client.get(f"/v1/sessions/{session_id}").json()["turns"]
        assert [t["question"] for t in turns] == ["My name is Alice.", "Please greet me by my name."]

        # A job outside the session names the avatar instead of uploading the photo.
        spoken = client.post("/v1/jobs", data={"mode": "speak", "text": "Hello there.", "avatar": avatar_id})
        assert spoken.status_code == 202, spoken.text
        assert farm.wait_job(spoken.json()["job_id"])["status"] == "succeeded"
        stats = client.get("/v1/stats").json()
    store = JobStore(make_engine(farm.settings.db_url))
    portrait_key = store.get_avatar(avatar_id).portrait_key
    jobs = store.session_jobs(session_id) + [store.get_job(spoken.json()["job_id"])[0]]
    assert {job.portrait_key for job in jobs} == {portrait_key}
    assert stats["faq_cache"]["misses"] >= 1  # the first turn was looked up (greedy decoding: cacheable)
