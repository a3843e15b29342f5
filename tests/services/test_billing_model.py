"""A stateful property test: the ledger against a model of what every balance and hold should be."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from imagegate.core.capabilities import NANO_BANANA, ModelCatalog
from imagegate.errors import InsufficientCredits, UpstreamUnavailable
from imagegate.persistence.db import create_engine, upgrade_database
from imagegate.persistence.uow import unit_of_work_factory
from imagegate.queue import open_queue
from imagegate.routing.router import Deployment, Router, RoutingPolicy
from imagegate.services import accounts
from imagegate.services.billing import quote
from imagegate.services.context import ServiceConfig, Services
from imagegate.services.execute import execute_job
from imagegate.services.submit import submit_job
from imagegate.services.tasks import cancel_job
from imagegate.storage import open_object_store

from .conftest import FakeProvider, text_spec


class LedgerMachine(RuleBasedStateMachine):
    """Grants, submissions, partial deliveries and cancellations in any order; money must always add up."""

    @initialize()
    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory()
        self.provider = FakeProvider()
        self.run(self._open(Path(self.folder.name)))
        self.balance = 0
        self.pending: dict[str, tuple[int, int]] = {}  # job id -> (n, held)

    async def _open(self, folder: Path) -> None:
        self.engine = create_engine(f"sqlite+aiosqlite:///{folder / 'ledger.db'}")
        await upgrade_database(self.engine)
        queue, events = open_queue("inprocess://")
        self.svc = Services(
            uow=unit_of_work_factory(self.engine),
            store=open_object_store("memory://"),
            queue=queue,
            events=events,
            # failures in a row across jobs would open the breaker and fail a later job's good slots: the
            # model is about money, so the breaker is kept out of it
            router=Router(
                [Deployment("fake", "fake", self.provider, retries=0)], RoutingPolicy(breaker_failures=10**9)
            ),
            catalog=ModelCatalog.of([NANO_BANANA]),
            config=ServiceConfig(),
        )
        self.key = (await accounts.create_key(self.svc, name="model", credits=0)).record

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    @rule(amount=st.integers(min_value=1, max_value=300_000))
    def grant(self, amount: int) -> None:
        self.run(accounts.add_credits(self.svc, self.key.id, amount))
        self.balance += amount

    @rule(n=st.integers(min_value=1, max_value=4))
    def submit(self, n: int) -> None:
        cost = quote(text_spec(n=n), NANO_BANANA)
        try:
            job = self.run(submit_job(self.svc, self.key, text_spec(n=n)))
        except InsufficientCredits:
            assert self.balance < cost
            return
        assert self.balance >= cost
        self.balance -= cost
        self.pending[job.id] = (n, cost)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.pending)))
        n, held = self.pending.pop(job_id)
        delivered = data.draw(st.integers(min_value=0, max_value=n))
        self.provider.script = [UpstreamUnavailable("down")] * (n - delivered)
        finished = self.run(execute_job(self.svc, job_id))
        assert finished is not None and finished.charged is not None
        assert len(finished.images) == delivered and finished.charged <= held
        if delivered == 0:
            assert finished.charged == 0
        self.balance += held - finished.charged

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.pending)))
        _, held = self.pending.pop(job_id)
        self.run(cancel_job(self.svc, self.key, job_id))
        self.balance += held

    @invariant()
    def money_adds_up(self) -> None:
        if not hasattr(self, "svc"):
            return
        balance, held = self.run(self._state())
        assert balance == self.balance >= 0
        assert held == sum(h for _, h in self.pending.values())

    async def _state(self) -> tuple[int, int]:
        async with self.svc.uow() as uow:
            key = await uow.keys.get(self.key.id)
            held = await uow.ledger.held(self.key.id)
        assert key is not None
        return key.credits, held

    def teardown(self) -> None:
        if hasattr(self, "engine"):
            self.run(self.engine.dispose())
            self.loop.close()
            self.folder.cleanup()


LedgerMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_ledger_against_a_model = LedgerMachine.TestCase
