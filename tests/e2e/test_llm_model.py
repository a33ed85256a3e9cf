"""The embedded LLM for real: SmolLM2-135M-Instruct converted from GGUF, loaded and asked.

SmolLM2-135M is tiny. Greedy decoding makes it deterministic, but it cannot
answer "What is my name?" from the history: it takes "my" for its own name and
invents one ("I'm Emily."), whatever the system prompt. It does use a name from
the history when asked to greet the user by name, which is what the multi-turn
test asks; without the history the name never appears.
"""

from __future__ import annotations

import re
import time

import pytest

from workers.errors import ModelMissingError
from workers.llm import prepare as llm_prepare
from workers.llm.backends.transformers_llm import TransformersLLM
from workers.llm.base import GenerationOptions, registry
from workers.llm.text import build_messages, clean_reply
from workers.payload import Turn
from workers.settings import LLMSettings, Settings

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
    spoken = clean_reply(reply)
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
