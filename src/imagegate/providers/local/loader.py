"""Loads a checkpoint inside a worker process: finds its family, reads it with diffusers' ``from_pretrained``,
places it on the device (dtype, offload, attention backend, ``torch.compile``) and builds a pipeline per task.

Imported only by worker processes: it imports torch and diffusers.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline

from imagegate.providers.local.capabilities import FamilyCapabilities, Task
from imagegate.providers.local.families import family_for_pipeline, family_named, supported_pipelines
from imagegate.providers.local.families.base import Family
from imagegate.providers.local.options import DiffusersOptions

log = logging.getLogger(__name__)

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class LoadError(Exception):
    """The model could not be loaded; the message says what to do about it."""


@dataclass
class Engine:
    """A loaded model, warm on its device."""

    family: Family
    capabilities: FamilyCapabilities
    pipelines: dict[Task, Any]
    pipeline_class: str
    device: str
    dtype: str
    load_s: float


def resolve_device(requested: str) -> str:
    """The torch device a worker uses: ``auto`` is the first GPU when there is one, else the CPU."""
    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    kind = requested.partition(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise LoadError(
            f"device {requested!r} was asked for, but this torch ({torch.__version__}) sees no CUDA GPU; "
            'install a CUDA build of torch or set devices = ["cpu"] in the deployment\'s options'
        )
    return requested


def load(source: str, device: str, options: DiffusersOptions) -> Engine:
    started = time.monotonic()
    _quiet_progress_bars()
    device = resolve_device(device)
    if options.cpu_threads is not None:
        torch.set_num_threads(options.cpu_threads)
    dtype_name = options.dtype if options.dtype != "auto" else ("float32" if device == "cpu" else "bfloat16")
    common: dict[str, Any] = {"local_files_only": options.local_files_only}
    if options.revision is not None:
        common["revision"] = options.revision
    if options.cache_dir is not None:
        common["cache_dir"] = options.cache_dir

    index = read_model_index(source, common)
    pipeline_class = str(index.get("_class_name", ""))
    family = _family(source, pipeline_class, options)
    capabilities = family.capabilities_for(pipeline_class)
    if device == "cpu" and not family.capabilities.cpu_capable:
        log.warning("%s runs on the CPU; %s is meant for a GPU and will be very slow", source, family.title)

    extra = family.load_kwargs(source, index, common)
    if options.variant is not None:
        extra["variant"] = options.variant
    try:
        loader: Any = DiffusionPipeline  # diffusers leaves from_pretrained untyped
        pipe = loader.from_pretrained(source, dtype=_DTYPES[dtype_name], **common, **extra)
    except (OSError, ValueError, ImportError) as exc:
        raise LoadError(_not_loadable(source, exc)) from exc

    family.configure(options.reference_area)
    _place(pipe, device, options)
    pipelines = family.pipelines(pipe)
    for task_pipe in pipelines.values():
        task_pipe.set_progress_bar_config(disable=True)
    return Engine(
        family=family,
        capabilities=capabilities,
        pipelines=pipelines,
        pipeline_class=pipeline_class,
        device=device,
        dtype=dtype_name,
        load_s=time.monotonic() - started,
    )


def read_model_index(source: str, common: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's model_index.json: from a directory, or the Hub (downloading it unless told not to)."""
    path = Path(source).expanduser()
    if path.is_dir():
        index_file = path / "model_index.json"
        if not index_file.is_file():
            raise LoadError(
                f"{source} holds no diffusers checkpoint (no model_index.json); point the deployment at a "
                "directory written by save_pretrained or downloaded with `hf download <repo> --local-dir <dir>`"
            )
    elif _looks_like_path(source):
        raise LoadError(f"no directory {source}: give an existing checkpoint directory or a Hugging Face model id")
    else:
        from huggingface_hub import hf_hub_download

        try:
            index_file = Path(hf_hub_download(source, "model_index.json", **common))
        except Exception as exc:  # the hub client raises many types: offline, gated, missing, bad id
            raise LoadError(_not_loadable(source, exc)) from exc
    try:
        loaded = json.loads(index_file.read_text())
    except (OSError, ValueError) as exc:
        raise LoadError(f"{index_file} could not be read as JSON ({exc})") from exc
    if not isinstance(loaded, dict):
        raise LoadError(f"{index_file} is not a diffusers model index")
    return loaded


def _family(source: str, pipeline_class: str, options: DiffusersOptions) -> Family:
    detected = family_for_pipeline(pipeline_class)
    if options.family is not None:
        family = family_named(options.family)
        if pipeline_class not in family.pipeline_classes:
            raise LoadError(
                f"{source} is a {pipeline_class or 'checkpoint without a pipeline class'}, which the "
                f"{family.name} family does not serve (it serves {', '.join(sorted(family.pipeline_classes))})"
            )
        return family
    if detected is None:
        raise LoadError(
            f"{source} is a {pipeline_class or 'checkpoint without a pipeline class'}; the diffusers provider "
            f"serves {', '.join(supported_pipelines())}"
        )
    return detected


def _place(pipe: Any, device: str, options: DiffusersOptions) -> None:
    if options.cpu_offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif options.cpu_offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif device != "cpu":  # loaded on the CPU already; moving there again only warns
        pipe.to(device)
    denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
    if denoiser is None:
        return
    if options.attention_backend is not None:
        try:
            denoiser.set_attention_backend(options.attention_backend)
        except (ValueError, RuntimeError, ImportError, AttributeError) as exc:
            raise LoadError(f"attention backend {options.attention_backend!r} cannot be used here: {exc}") from exc
    if options.compile:
        # Compiling the repeated block once (where the model says which it is) gives the same speed for a
        # fraction of the compile time of the whole denoiser.
        if getattr(denoiser, "_repeated_blocks", None):
            denoiser.compile_repeated_blocks(fullgraph=True)
        else:
            denoiser.compile()


def _quiet_progress_bars() -> None:
    # a worker's output is the server's log: per-component loading bars would flood it
    import diffusers.utils.logging
    import transformers.utils.logging

    for module in (diffusers.utils.logging, transformers.utils.logging):
        quiet: Any = module.disable_progress_bar  # untyped in diffusers
        quiet()


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or source.count("/") > 1 or "\\" in source


def _not_loadable(source: str, exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {exc}".strip()
    if len(reason) > 400:
        reason = reason[:399] + "…"
    return (
        f"model {source!r} could not be loaded ({reason}). If it is a Hugging Face model, download it on a "
        f"machine with network access (`hf download {source}`; set HF_TOKEN for gated models) into the cache "
        "(HF_HOME) this server uses, or copy the checkpoint directory here and name its path instead; with "
        "local_files_only = true nothing is fetched."
    )
