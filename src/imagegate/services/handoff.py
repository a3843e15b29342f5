"""Finished jobs handed from the worker that ran them to a request waiting for them in the same process.

A sync request (``generateContent``, ``images/generations``) waits for its job, then needs the job and its
images' bytes. When the job ran in this process (always, with the in-process queue) the worker still holds
both, so the waiter takes them from here instead of reading the job row, the file rows and the files back.
Only jobs somebody here waits for are kept, and only until the last of their waiters leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from imagegate.core.jobs import Job


@dataclass(frozen=True, slots=True)
class Delivered:
    job: Job
    images: Mapping[str, bytes]  # by file id: every stored image of the job


class ResultHandoff:
    def __init__(self) -> None:
        self._waiters: dict[str, int] = {}
        self._delivered: dict[str, Delivered] = {}

    @contextmanager
    def watch(self, job_id: str) -> Iterator[Callable[[], Delivered | None]]:
        """While the block runs, a finish of ``job_id`` offered here is kept; yields a getter for it."""
        self._waiters[job_id] = self._waiters.get(job_id, 0) + 1
        try:
            yield lambda: self._delivered.get(job_id)
        finally:
            left = self._waiters[job_id] - 1
            if left:
                self._waiters[job_id] = left
            else:
                del self._waiters[job_id]
                self._delivered.pop(job_id, None)

    def offer(self, job: Job, images: Mapping[str, bytes]) -> None:
        """A worker finished ``job`` (its final write committed); kept only when someone here waits for it."""
        if job.id in self._waiters:
            self._delivered[job.id] = Delivered(job, images)

    def __len__(self) -> int:
        return len(self._delivered)
