"""The worker process: loads one model on one device, then runs requests from its pipe until told to stop.

A reader thread takes messages off the pipe at any time (so a cancel reaches a request mid-denoise); the main
thread runs the model. Requests of one shape that arrive within the batch window run as one pipeline call,
each with its own seeded generator, so an image depends on its seed, not on its batch-mates. Every step is
reported; when every request of a call has been cancelled the step callback raises, which ends the loop.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from imagegate.providers.local.messages import (
    Cancel,
    Cancelled,
    Done,
    Failed,
    LoadFailed,
    Ready,
    Request,
    Step,
    Stop,
    WorkerConfig,
)
from imagegate.providers.local.options import DiffusersOptions

log = logging.getLogger(__name__)


class _Interrupted(Exception):
    """Raised from the step callback to leave a pipeline whose every request was cancelled."""


class Mailbox:
    """Requests waiting to run, and which requests were cancelled; shared by the reader and the runner."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._waiting: deque[Request] = deque()
        self._cancelled: set[int] = set()
        self._stopped = False

    def put(self, request: Request) -> None:
        with self._changed:
            self._waiting.append(request)
            self._changed.notify_all()

    def cancel(self, request_id: int) -> None:
        with self._changed:
            self._cancelled.add(request_id)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    def is_cancelled(self, request_id: int) -> bool:
        with self._changed:
            return request_id in self._cancelled

    def forget(self, request_id: int) -> None:
        with self._changed:
            self._cancelled.discard(request_id)

    def take(self) -> Request | None:
        """The oldest waiting request, waiting for one; None once stopped."""
        with self._changed:
            while not self._waiting and not self._stopped:
                self._changed.wait()
            if self._stopped:
                return None
            return self._waiting.popleft()

    def take_matching(self, shape: tuple[object, ...], limit: int, window_s: float) -> list[Request]:
        """Up to ``limit`` waiting requests of ``shape``, waiting at most ``window_s`` for them to arrive."""
        deadline = time.monotonic() + window_s
        taken: list[Request] = []
        with self._changed:
            while True:
                for request in list(self._waiting):
                    if len(taken) == limit:
                        break
                    if request.shape == shape:
                        self._waiting.remove(request)
                        taken.append(request)
                left = deadline - time.monotonic()
                if len(taken) == limit or left <= 0 or self._stopped:
                    return taken
                self._changed.wait(left)


def main(conn: Connection) -> None:
    """The process's entry point (started by ``pool.WorkerHandle``): its first message is its ``WorkerConfig``."""
    try:
        config = conn.recv()
    except (EOFError, OSError):
        return
    if not isinstance(config, WorkerConfig):
        raise SystemExit("imagegate worker: expected a WorkerConfig first")
    logging.basicConfig(level=logging.WARNING, format=f"imagegate-worker[{os.getpid()}] %(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # tokenizer threads would fight torch's
    mailbox = Mailbox()
    threading.Thread(target=_read, args=(conn, mailbox), name="imagegate-worker-reader", daemon=True).start()
    options = DiffusersOptions.model_validate(config.options)
    try:
        from imagegate.providers.local import loader

        engine = loader.load(config.source, config.device, options)
    except Exception as exc:  # whatever went wrong, the API process must hear why
        message = str(exc) if type(exc).__name__ == "LoadError" else f"{type(exc).__name__}: {exc}"
        log.error("could not load %s: %s", config.source, message)
        conn.send(LoadFailed(message))
        return
    conn.send(
        Ready(
            pipeline_class=engine.pipeline_class,
            family=engine.family.name,
            tasks=engine.capabilities.tasks,
            device=engine.device,
            dtype=engine.dtype,
            load_s=engine.load_s,
        )
    )
    Runner(engine, conn, mailbox, options, config.label).serve()


def _read(conn: Connection, mailbox: Mailbox) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the API process went away: nobody is left to answer
            mailbox.stop()
            return
        if isinstance(message, Request):
            mailbox.put(message)
        elif isinstance(message, Cancel):
            mailbox.cancel(message.id)
        elif isinstance(message, Stop):
            mailbox.stop()
            return


class Runner:
    """Runs batches on the loaded engine and answers each request exactly once."""

    def __init__(self, engine: Any, conn: Connection, mailbox: Mailbox, options: DiffusersOptions, label: str) -> None:
        self._engine = engine
        self._conn = conn
        self._mailbox = mailbox
        self._options = options
        self._label = label

    def serve(self) -> None:
        while (first := self._mailbox.take()) is not None:
            limit = self._engine.capabilities.batch_limit(first.task)
            if self._options.max_batch is not None:
                limit = min(limit, self._options.max_batch)
            batch = [first]
            if limit > 1:
                window_s = self._options.batch_window_ms / 1000
                batch += self._mailbox.take_matching(first.shape, limit - 1, window_s)
            live = []
            for request in batch:
                if self._mailbox.is_cancelled(request.id):  # cancelled while it waited: never started
                    self._answer(Cancelled(request.id, 0, request.steps))
                else:
                    live.append(request)
            if live:
                self._run(live)

    def _answer(self, message: Done | Failed | Cancelled) -> None:
        self._mailbox.forget(message.id)
        self._conn.send(message)

    def _run(self, batch: Sequence[Request]) -> None:
        import torch

        started = time.monotonic()
        try:
            references = [[_decode(data) for data in request.images] for request in batch]
        except ValueError as exc:
            for request in batch:
                self._answer(Failed(request.id, "invalid", str(exc)))
            return
        ids = tuple(request.id for request in batch)
        steps_run = 0
        total = batch[0].steps

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            nonlocal steps_run, total
            steps_run = step + 1
            total = int(getattr(pipe, "_num_timesteps", None) or total)
            self._conn.send(Step(ids, steps_run, total))
            if all(self._mailbox.is_cancelled(i) for i in ids):
                raise _Interrupted
            return tensors

        # CPU generators: the same seed gives the same starting noise whatever the device (and batch-mates).
        generators = [torch.Generator(device="cpu").manual_seed(request.seed) for request in batch]
        pipe = self._engine.pipelines[batch[0].task]
        try:
            with torch.inference_mode():
                images = self._engine.family.run(pipe, batch, references, generators, on_step)
        except _Interrupted:
            for request in batch:
                self._answer(Cancelled(request.id, steps_run, total))
            return
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            for request in batch:
                self._answer(Failed(request.id, "unavailable", f"out of GPU memory on {self._engine.device}"))
            return
        except (ValueError, TypeError) as exc:  # the pipeline's own input checks
            log.warning("pipeline refused a request: %s", exc)
            for request in batch:
                self._answer(Failed(request.id, "invalid", f"the model refused the request: {exc}"))
            return
        except Exception as exc:
            log.exception("pipeline failed")
            for request in batch:
                self._answer(Failed(request.id, "unavailable", f"the model failed: {type(exc).__name__}: {exc}"))
            return
        seconds = time.monotonic() - started
        for request, image in zip(batch, images, strict=True):
            if self._mailbox.is_cancelled(request.id):  # its batch-mates kept the call going
                self._answer(Cancelled(request.id, steps_run, total))
                continue
            self._answer(self._encode(request, image, steps_run, seconds, len(batch)))

    def _encode(self, request: Request, image: Any, steps: int, seconds: float, batch_size: int) -> Done | Failed:
        from imagegate.providers.local.provenance import Provenance, encode

        try:
            data = encode(image, Provenance(self._label, request.seed), request.mime_type, request.quality)
        except (ValueError, OSError) as exc:
            return Failed(request.id, "unavailable", f"the image could not be encoded: {exc}")
        width, height = image.size
        return Done(request.id, data, request.mime_type, width, height, steps, seconds, batch_size)


def _decode(data: bytes) -> Any:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB")  # phone photos are stored sideways
    except Exception as exc:  # Pillow raises many unrelated types for damaged data
        raise ValueError(f"an input image could not be decoded ({type(exc).__name__})") from exc


if __name__ == "__main__":
    import sys

    main(Connection(int(sys.argv[1])))
