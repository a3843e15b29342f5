"""What every model family module provides: its limits, which checkpoints it serves, and how to call them.

The class attributes are plain data the API process reads; the methods run in a worker process only, where
torch and diffusers are imported, so their arguments are typed loosely (``Any``) here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from imagegate.providers.local.capabilities import FamilyCapabilities, Task
from imagegate.providers.local.messages import Request

#: ``callback_on_step_end`` as diffusers calls it: (pipeline, step index, timestep, tensors) -> tensors.
StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]


class Family(ABC):
    """One family of checkpoints that share an architecture and a way of being called."""

    name: ClassVar[str]
    title: ClassVar[str]
    capabilities: ClassVar[FamilyCapabilities]
    #: ``_class_name`` values of model_index.json this family serves, and what such a checkpoint can do.
    pipeline_classes: ClassVar[Mapping[str, frozenset[Task]]]

    def capabilities_for(self, pipeline_class: str) -> FamilyCapabilities:
        return self.capabilities.restricted(self.pipeline_classes.get(pipeline_class, frozenset()))

    def load_kwargs(self, source: str, index: Mapping[str, Any], common: Mapping[str, Any]) -> dict[str, Any]:
        """Components to hand ``from_pretrained`` beside the checkpoint's own (none unless a family needs it)."""
        return {}

    def configure(self, reference_area: int | None) -> None:
        """Process-wide settings of the family's pipeline modules (a worker serves one model only)."""
        return None

    @abstractmethod
    def pipelines(self, pipe: Any) -> dict[Task, Any]:
        """A pipeline per task, all sharing the loaded weights."""

    @abstractmethod
    def run(
        self,
        pipe: Any,
        batch: Sequence[Request],
        images: Sequence[Sequence[Any]],
        generators: list[Any],
        callback: StepCallback,
    ) -> list[Any]:
        """Call ``pipe`` once for ``batch`` (same shape; ``images[i]`` are request i's PIL references)."""


def signature_default(function: Any, name: str) -> Any:
    """A parameter's default, read from the installed library rather than copied here."""
    import inspect

    return inspect.signature(function).parameters[name].default
