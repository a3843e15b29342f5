"""A ``diffusers`` deployment's options (``[[deployments]] options`` in ``imagegate.toml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FamilyName = Literal["qwen_image", "flux2_klein", "sd_turbo"]


class DiffusersOptions(BaseModel):
    """How the worker processes load and run a model. Every field has a default that suits one GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: FamilyName | None = Field(
        default=None, description="the model family; default: read from the checkpoint's model_index.json"
    )
    devices: list[str] = Field(
        default_factory=lambda: ["auto"],
        min_length=1,
        description="one worker process per entry: 'cuda:0', 'cuda:1', 'cpu', or 'auto' (the GPU if any)",
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        default="auto", description="auto: bfloat16 on a GPU, float32 on the CPU"
    )
    attention_backend: str | None = Field(
        default=None, description="diffusers attention backend of the denoiser, e.g. 'flash', '_native_cudnn'"
    )
    cpu_offload: Literal["none", "model", "sequential"] = Field(
        default="none", description="keep weights in RAM and move them to the GPU as needed (slower, less memory)"
    )
    compile: bool = Field(default=False, description="torch.compile the denoiser (first calls of a shape are slow)")
    steps: int | None = Field(default=None, ge=1, description="denoising steps; default: the family's")
    guidance_scale: float | None = Field(default=None, ge=0, description="default: the family's")
    resolution: int | None = Field(
        default=None, ge=16, le=4096, description="outputs have about resolution² pixels; default: the family's"
    )
    reference_area: int | None = Field(
        default=None,
        ge=16 * 16,
        description="pixels each reference image is scaled to before encoding; default: the family's (~1 MP)",
    )
    queue_size: int = Field(default=8, ge=0, description="requests waiting per worker beyond the running batch")
    max_batch: int | None = Field(
        default=None, ge=1, description="same-shape requests run together; default: the family's limit"
    )
    batch_window_ms: float = Field(
        default=10.0, ge=0, le=10_000, description="how long a worker waits for same-shape requests to batch"
    )
    local_files_only: bool = Field(default=False, description="never download: load from a path or the HF cache")
    revision: str | None = None
    variant: str | None = Field(default=None, description="weights variant, e.g. 'fp16'")
    cache_dir: str | None = None
    cpu_threads: int | None = Field(default=None, ge=1, description="torch threads of a CPU worker")
    start_timeout_s: float = Field(default=1800.0, gt=0, description="longest a worker may take to load the model")
    restart_backoff_s: float = Field(
        default=30.0, ge=0, description="after a failed load, requests fail at once for this long"
    )
    seconds_per_image: float = Field(
        default=10.0, gt=0, description="first guess of a request's duration, for Retry-After until one is measured"
    )

    @field_validator("devices")
    @classmethod
    def _known_devices(cls, devices: list[str]) -> list[str]:
        for device in devices:
            kind, _, index = device.partition(":")
            if kind not in ("auto", "cpu", "cuda", "mps", "xpu") or (index and not index.isdigit()):
                raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or 'xpu'")
        return devices
