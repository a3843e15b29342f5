"""What the API process and a worker process tell each other over their pipe (plain picklable dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

from imagegate.providers.local.capabilities import Task


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker process needs to load its model (sent once, at spawn)."""

    source: str  # Hugging Face id or local directory
    device: str
    options: dict[str, object]  # DiffusersOptions.model_dump()
    label: str  # what the image metadata names as the generator


@dataclass(frozen=True, slots=True)
class Request:
    """One image to make. ``id`` is unique within the worker's life."""

    id: int
    task: Task
    prompt: str
    images: tuple[bytes, ...]
    width: int
    height: int
    steps: int
    guidance: float
    seed: int
    mime_type: str
    quality: int | None
    negative_prompt: str | None = None  # per request, so it does not split a batch (the pipelines take a list)

    @property
    def shape(self) -> tuple[object, ...]:
        """Requests with equal shapes may share one pipeline call."""
        return (self.task, self.width, self.height, self.steps, self.guidance, len(self.images))


@dataclass(frozen=True, slots=True)
class Cancel:
    id: int


@dataclass(frozen=True, slots=True)
class Stop:
    """Finish nothing more and exit."""


@dataclass(frozen=True, slots=True)
class Ready:
    pipeline_class: str
    family: str
    tasks: frozenset[Task]
    device: str
    dtype: str
    load_s: float


@dataclass(frozen=True, slots=True)
class LoadFailed:
    message: str


@dataclass(frozen=True, slots=True)
class Step:
    ids: tuple[int, ...]
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class Done:
    id: int
    data: bytes
    mime_type: str
    width: int
    height: int
    steps: int
    seconds: float
    batch_size: int


@dataclass(frozen=True, slots=True)
class Failed:
    id: int
    kind: str  # "invalid": the request cannot be done; "unavailable": the engine failed
    message: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    id: int
    steps_run: int
    steps_total: int
