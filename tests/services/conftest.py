"""Services wired to a real SQLite database, an in-memory object store and scriptable fake providers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from imagegate.core.capabilities import NANO_BANANA, ModelCatalog, ModelSpec, estimate_usage
from imagegate.core.images import ASPECT_RATIOS, ImageOutput
from imagegate.core.jobs import Generation, JobSpec, Role, Turn
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.uow import unit_of_work_factory
from imagegate.queue import open_queue
from imagegate.routing.router import Deployment, Router
from imagegate.services.context import ServiceConfig, Services
from imagegate.storage import open_object_store

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


class FakeProvider:
    """Answers from a script: each call pops the next item (an exception to raise or a Generation)."""

    def __init__(self, *script: Generation | Exception, default: Generation | Exception | None = None) -> None:
        self.script = list(script)
        self.default = default
        self.calls: list[tuple[JobSpec, str]] = []

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FakeProvider:
        return cls()

    async def generate(self, spec: JobSpec, model: ModelSpec, upstream_model: str) -> Generation:
        self.calls.append((spec, upstream_model))
        item = self.script.pop(0) if self.script else self.default
        if item is None:
            item = image_generation(spec, model)
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        pass


def image_generation(spec: JobSpec, model: ModelSpec = NANO_BANANA, text: str = "done") -> Generation:
    size = ASPECT_RATIOS[spec.aspect_ratio or "1:1"]
    return Generation(
        images=(ImageOutput(PNG_1x1, "image/png", size.width, size.height),),
        text=text,
        usage=estimate_usage(spec, model, output_images=1, output_text=text),
        model_version=model.id,
    )


def text_spec(prompt: str = "a red bicycle", **changes: Any) -> JobSpec:
    return JobSpec(model="gemini-2.5-flash-image", turns=(Turn(Role.USER, (prompt,)),), **changes)


ServicesFactory = Callable[..., Services]


@pytest.fixture
async def make_services(tmp_path: Path) -> AsyncIterator[Callable[..., Services]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    await upgrade_database(engine)

    def make(*providers: FakeProvider, config: ServiceConfig | None = None) -> Services:
        queue, events = open_queue("inprocess://")
        # Tried in the order given, without retries: these tests script each call; routing has its own tests.
        fakes = providers or (FakeProvider(),)
        deployments = [Deployment(f"dep{i}", "fake", p, priority=i, retries=0) for i, p in enumerate(fakes)]
        return Services(
            uow=unit_of_work_factory(engine),
            store=open_object_store("memory://"),
            queue=queue,
            events=events,
            router=Router(deployments),
            catalog=ModelCatalog.of([NANO_BANANA]),
            config=config or ServiceConfig(poll_interval_s=0.05),
        )

    yield make
    await engine.dispose()
