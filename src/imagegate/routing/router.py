"""Deployments and the order they are tried in for a model.

A deployment is one provider instance plus the models it serves (our id -> the provider's own name).
This first router keeps the configured order; health-aware ordering arrives with the provider-fleet work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from imagegate.core.capabilities import Prices
from imagegate.core.ports import ImageProvider


@dataclass(frozen=True)
class Deployment:
    name: str
    provider_name: str
    provider: ImageProvider
    models: dict[str, str] = field(default_factory=dict)  # empty: serves every model under its own id
    prices: dict[str, Prices] = field(default_factory=dict)  # by our model id; absent: the model's own prices

    def upstream_model(self, model_id: str) -> str | None:
        if not self.models:
            return model_id
        return self.models.get(model_id)


@dataclass(frozen=True)
class Candidate:
    deployment: Deployment
    upstream_model: str


class Router:
    def __init__(self, deployments: Sequence[Deployment]) -> None:
        self.deployments = tuple(deployments)

    def candidates(self, model_id: str) -> list[Candidate]:
        """Deployments able to serve ``model_id``, in the order to try them."""
        found = []
        for dep in self.deployments:
            upstream = dep.upstream_model(model_id)
            if upstream is not None:
                found.append(Candidate(dep, upstream))
        return found

    async def aclose(self) -> None:
        for dep in self.deployments:
            await dep.provider.aclose()
