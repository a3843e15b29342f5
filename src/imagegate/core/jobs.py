"""Jobs: what was asked (``JobSpec``), what a provider answered (``Generation``), and the job's life (``Job``).

Every dialect turns a request into one ``JobSpec`` and renders one ``Job``; nothing here knows any wire format.
A job has ``n`` slots (one provider call each); each slot ends in a ``SlotResult`` that is either images, a
refusal (a finish or block reason, no images) or an error, so a partial success is representable and billable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from imagegate.core.attempts import Attempt
from imagegate.core.images import ImageInput, ImageOutput


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

#: The only moves a job may make. RUNNING -> QUEUED is the recovery of a job whose worker died.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.CANCELLED}),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


class JobPriority(IntEnum):
    """Which jobs a worker claims first: a lower value runs sooner.

    A caller waiting on the open connection (sync) comes before an async task, which comes before bulk work
    (batch APIs), so a flood of tasks never delays an interactive request. Stored on the job row.
    """

    INTERACTIVE = 0
    ASYNC = 1
    BATCH = 2


def batch_runners(runners: int, share: float) -> int:
    """How many of a process's ``runners`` may run batch jobs at once: ``share`` of them, at least one, and
    never all of two or more, so a batch job waiting for a deployment's batch slot never leaves an
    interactive request without a runner."""
    if runners <= 1:
        return runners
    return min(runners - 1, max(1, math.floor(share * runners)))


class InvalidTransition(Exception):
    """A programming error: some code tried a move the job model forbids."""


def check_transition(current: JobStatus, target: JobStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a job cannot go from {current} to {target}")


class Role(StrEnum):
    USER = "user"
    MODEL = "model"


class Modality(StrEnum):
    TEXT = "TEXT"
    IMAGE = "IMAGE"


Part = str | ImageInput


@dataclass(frozen=True, slots=True)
class PartInfo:
    """What a thinking model marked on one part of its turn, to be sent back exactly in the next request.

    ``thought``: the part is the model's reasoning (or an interim image), not its answer. ``signature``: the
    opaque ``thoughtSignature`` bytes Google attached; a thinking model needs them back to keep its context.
    """

    thought: bool = False
    signature: bytes | None = None


_PLAIN = PartInfo()


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a conversation: text and images in the order the caller gave them.

    ``info`` is empty, or holds one ``PartInfo`` per part (only model turns of thinking models carry any).
    """

    role: Role
    parts: tuple[Part, ...]
    info: tuple[PartInfo, ...] = ()

    def __post_init__(self) -> None:
        if self.info and len(self.info) != len(self.parts):
            raise ValueError("a turn's info must have one entry per part")

    def part_info(self, index: int) -> PartInfo:
        return self.info[index] if self.info else _PLAIN

    @property
    def answer_parts(self) -> tuple[Part, ...]:
        """The parts that are no thoughts: what the turn says, as opposed to how the model got there."""
        if not self.info:
            return self.parts
        return tuple(p for p, i in zip(self.parts, self.info, strict=True) if not i.thought)

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.answer_parts if isinstance(p, str))

    @property
    def images(self) -> tuple[ImageInput, ...]:
        return tuple(p for p in self.answer_parts if isinstance(p, ImageInput))


@dataclass(frozen=True, slots=True)
class SearchGrounding:
    """Google Search grounding asked for (Gemini's ``tools: [{googleSearch: {...}}]``)."""

    web: bool = True  # searchTypes.webSearch (Google's default when no searchTypes are given)
    images: bool = False  # searchTypes.imageSearch
    time_range: tuple[str, str] | None = None  # timeRangeFilter (startTime, endTime), RFC 3339


@dataclass(frozen=True, slots=True)
class SafetyRule:
    """One of Google's ``safetySettings``: block content of ``category`` at ``threshold`` (enum names)."""

    category: str  # HARM_CATEGORY_…
    threshold: str  # BLOCK_…, OFF


@dataclass(frozen=True, slots=True)
class GoogleOptions:
    """Google's own generation knobs a caller set, to reach a ``generateContent`` upstream as sent.

    They steer the text half of an image model's answer and Google's safety filters. Upstreams that do not
    speak ``generateContent`` have no equivalent for them, so they have no effect there (see ``docs``);
    the dialect checks the ranges Google checks, so a value here is one Google accepts.
    """

    safety: tuple[SafetyRule, ...] = ()
    top_p: float | None = None
    top_k: int | None = None
    max_output_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    media_resolution: str | None = None  # MEDIA_RESOLUTION_LOW/MEDIUM/HIGH: how finely Google reads input images

    def __bool__(self) -> bool:
        return self != _NO_OPTIONS


_NO_OPTIONS = GoogleOptions()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a provider needs to make the images of one request; the same for every dialect."""

    model: str
    turns: tuple[Turn, ...]
    system_instruction: str | None = None
    aspect_ratio: str | None = None  # None: the first input image's ratio, else 1:1
    image_size: str | None = None  # "512", "1K", "2K" or "4K" (Google's spelling); None: the model's default
    modalities: frozenset[Modality] = frozenset({Modality.TEXT, Modality.IMAGE})
    n: int = 1
    seed: int | None = None
    seed_drawn: bool = False  # the server drew ``seed`` for an unseeded job (slot i uses seed + i)
    temperature: float | None = None
    dialect: str = "gemini"
    output_mime_type: str = "image/png"  # what the stored images are encoded as
    output_quality: int | None = None  # JPEG/WEBP quality; None keeps the encoder's default
    include_thoughts: bool = False  # return the model's thought parts (thinkingConfig.includeThoughts)
    thinking_level: str | None = None  # thinkingConfig.thinkingLevel ("minimal", "high"); None: the model's own
    grounding: SearchGrounding | None = None  # ground the answer in Google Search
    google: GoogleOptions = _NO_OPTIONS  # safety settings and sampling knobs for a generateContent upstream
    end_user: str | None = None  # the caller's own end-user id (OpenAI's safety_identifier or user), for abuse tracing
    # Diffusion knobs, for the upstreams that take them (local pipelines): what the image should not show, how
    # many denoising steps to run, how strongly to follow the prompt. None: the deployment's (or family's) own.
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    deployment: str | None = None  # only this deployment may serve it (a side-by-side compare); None: the router's pick

    @property
    def request_turn(self) -> Turn:
        """The caller's own last message: what this job is asked to do."""
        for turn in reversed(self.turns):
            if turn.role is Role.USER:
                return turn
        return Turn(Role.USER, ())

    @property
    def prompt(self) -> str:
        return self.request_turn.text

    @property
    def input_images(self) -> tuple[ImageInput, ...]:
        return self.request_turn.images

    @property
    def context_images(self) -> tuple[ImageInput, ...]:
        """Every image of the conversation, oldest first (earlier model outputs included)."""
        return tuple(img for turn in self.turns for img in turn.images)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one or more provider calls, split by modality as Gemini reports them."""

    input_text_tokens: int = 0
    input_image_tokens: int = 0
    output_text_tokens: int = 0
    output_image_tokens: int = 0
    thoughts_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens

    @property
    def output_tokens(self) -> int:
        return self.output_text_tokens + self.output_image_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.thoughts_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_text_tokens + other.input_text_tokens,
            self.input_image_tokens + other.input_image_tokens,
            self.output_text_tokens + other.output_text_tokens,
            self.output_image_tokens + other.output_image_tokens,
            self.thoughts_tokens + other.thoughts_tokens,
        )


class FinishReason:
    """Why a generation ended, in Gemini's vocabulary (the model's own)."""

    STOP = "STOP"
    NO_IMAGE = "NO_IMAGE"
    IMAGE_SAFETY = "IMAGE_SAFETY"
    IMAGE_PROHIBITED_CONTENT = "IMAGE_PROHIBITED_CONTENT"
    IMAGE_OTHER = "IMAGE_OTHER"
    SAFETY = "SAFETY"
    PROHIBITED_CONTENT = "PROHIBITED_CONTENT"
    RECITATION = "RECITATION"
    MAX_TOKENS = "MAX_TOKENS"
    OTHER = "OTHER"


#: Google's ``groundingMetadata`` as it came (search queries, sources, the search entry point), passed on as is.
GroundingMetadata = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Thought:
    """One thought part of a thinking model's answer: reasoning text or an interim image (never billed)."""

    text: str = ""
    image: ImageOutput | None = None
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """What one provider call produced. No images plus a reason is a refusal, not an error.

    A thinking model's answer also has ``thoughts`` (before the answer) and ``thoughtSignature``s on the text
    (``text_signature``) and on each image (``image_signatures``, one per image or empty).
    """

    images: tuple[ImageOutput, ...]
    text: str = ""
    finish_reason: str | None = FinishReason.STOP
    finish_message: str | None = None
    block_reason: str | None = None  # the prompt was blocked before generation
    usage: Usage = field(default_factory=Usage)
    model_version: str | None = None
    thoughts: tuple[Thought, ...] = ()
    text_signature: bytes | None = None
    image_signatures: tuple[bytes | None, ...] = ()
    grounding: GroundingMetadata | None = None

    @property
    def refused(self) -> bool:
        return not self.images


@dataclass(frozen=True, slots=True)
class JobError:
    """A failure recorded on a job or slot: a domain error code (see ``imagegate.errors``) and a message."""

    code: str
    message: str
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An output image as it was stored: served later by id."""

    file_id: str
    mime_type: str
    width: int
    height: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class StoredThought:
    """A ``Thought`` as it was kept: its interim image stored like an output (but not billed)."""

    text: str = ""
    image: StoredImage | None = None
    signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class SlotResult:
    """The outcome of one of a job's ``n`` provider calls."""

    index: int
    images: tuple[StoredImage, ...] = ()
    text: str = ""
    finish_reason: str | None = None
    finish_message: str | None = None
    block_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model_version: str | None = None
    error: JobError | None = None
    deployment: str | None = None  # which deployment answered (its prices apply)
    attempts: tuple[Attempt, ...] = ()  # every deployment tried for this slot, in order
    seed: int | None = None  # the seed the answering deployment made it with (None: it takes none)
    thoughts: tuple[StoredThought, ...] = ()
    text_signature: bytes | None = None
    image_signatures: tuple[bytes | None, ...] = ()  # one per image, or empty
    grounding: GroundingMetadata | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running job is: steps done of all its calls' steps (known only for providers that report)."""

    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Job:
    """A request's life: who asked, where it stands, and what it produced.

    The ``JobSpec`` (with its images) is stored beside the job and loaded only by the worker that runs it.
    """

    id: str
    key_id: str
    model: str
    status: JobStatus
    created_at: datetime
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_expires_at: datetime | None = None
    deployment: str | None = None
    results: tuple[SlotResult, ...] = ()
    error: JobError | None = None
    n: int = 1
    dialect: str = "gemini"
    request_id: str | None = None
    held: int = 0  # micro-units reserved at submission (metered keys)
    charged: int | None = None  # the final price once settled; None until the job ends
    progress: Progress | None = None  # while running, when the provider reports steps
    priority: JobPriority = JobPriority.ASYNC

    @property
    def images(self) -> tuple[StoredImage, ...]:
        return tuple(img for r in self.results for img in r.images)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for r in self.results:
            total = total + r.usage
        return total

    def moved_to(self, status: JobStatus, **changes: object) -> Job:
        """A copy in ``status``; refuses a move the job model forbids."""
        check_transition(self.status, status)
        return replace(self, status=status, **changes)  # type: ignore[arg-type]
