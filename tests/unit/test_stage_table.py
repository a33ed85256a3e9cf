"""The stage table is the one description of a stage: everything else agrees with it."""

from __future__ import annotations

import importlib
import typing

import pytest

from contracts.payload import Stage
from contracts.settings import Settings
from pipeline.app import app, stage_queues
from pipeline.stages import ASSEMBLE, STAGE_NAMES, STAGES, spec_of_task

pytestmark = pytest.mark.unit


def test_the_wire_names_are_the_table_names() -> None:
    assert set(typing.get_args(Stage)) == set(STAGE_NAMES)


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_each_stage_package_has_its_registry_preparation_and_task(name: str) -> None:
    spec = STAGES[name]
    settings = Settings()
    assert spec.registry().stage == name
    assert settings.stage(name).backend in spec.registry().names()
    assert callable(importlib.import_module(f"{spec.package}.prepare").prepare)
    importlib.import_module(spec.tasks_module)
    assert spec.task in app.tasks and spec_of_task(spec.task) is spec
    for field in spec.shaping:  # every shaping setting exists
        value: object = settings.stage(name)
        for part in field.split("."):
            value = getattr(value, part)


def test_the_assembly_runs_on_its_stage_queue_and_is_registered() -> None:
    importlib.import_module(STAGES[ASSEMBLE.stage].tasks_module)
    assert ASSEMBLE.task in app.tasks and spec_of_task(ASSEMBLE.task) is ASSEMBLE
    routes = app.conf.task_routes
    assert routes[ASSEMBLE.task] == routes[STAGES[ASSEMBLE.stage].task]


def test_one_queue_per_stage_with_a_length_limit() -> None:
    settings = Settings(queue_prefix="p-")
    queues = stage_queues(settings)
    assert [q.name for q in queues] == [f"p-{name}" for name in STAGE_NAMES]
    assert all(q.queue_arguments["x-overflow"] == "reject-publish" for q in queues)


def test_an_offer_names_every_backend_with_its_version() -> None:
    settings = Settings()
    offer = STAGES["animation"].offer(settings)
    assert offer.backends == {"landmark": "2"} and offer.shaping == {"fps": 25, "max_side": 1920}
    assert STAGES["animation"].offer(settings.model_copy(update={"animation": settings.animation.model_copy(
        update={"fps": 30})})).digest != offer.digest


class CountingRedis:
    """The two calls StageCatalog makes, over a dict, counting reads."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[bytes, bytes]] = {}
        self.reads = 0

    def hset(self, key: str, field: str, value: str) -> None:
        self.hashes.setdefault(key, {})[field.encode()] = value.encode()

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        self.reads += 1
        return dict(self.hashes.get(key, {}))


def test_the_catalog_reads_again_when_a_required_stage_is_missing() -> None:
    from contracts.catalog import StageOffer
    from pipeline.catalog import StageCatalog

    client = CountingRedis()
    catalog = StageCatalog(client, max_age=60)  # type: ignore[arg-type]
    assert catalog.offers(require=["tts"]) == {}
    catalog.publish(StageOffer(stage="tts", digest="d", backends={"piper": "2"}))
    assert "tts" not in catalog.offers()  # a fresh read is reused...
    assert catalog.offers(require=["tts"])["tts"].digest == "d"  # ...but not when it lacks a required stage
    reads = client.reads
    catalog.offers(require=["tts"])
    assert client.reads == reads  # complete and fresh: reused
