"""Seconds per image and GPU utilisation of each local model family at 1024², on random weights.

Every pipeline is built from its published architecture (configs written here, weights random, nothing
downloaded) directly on the GPU in bfloat16, and called through the family module the ``diffusers`` provider
uses, with the provider's step callback; so the numbers are the model's compute, not the quality of any
weights. GPU utilisation is sampled from ``nvidia-smi`` every 100 ms while the calls run.

    python bench/local_models.py                      # every family, 1024², the family's default steps
    python bench/local_models.py --family sd_turbo --size 512 --repeats 5 --out sd.json

Without a CUDA GPU it says so and exits 0 (nothing to measure on a CPU at these sizes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from imagegate.providers.local.capabilities import Task
from imagegate.providers.local.families import FAMILIES
from imagegate.providers.local.messages import Request


def cpu(factory: Callable[..., Any], **kwargs: Any) -> Any:
    """``factory(**kwargs)`` outside the GPU device context (schedulers build numpy tables from tensors)."""
    import torch

    with torch.device("cpu"):
        return factory(**kwargs)


def byte_tokenizer(specials: tuple[str, ...] = ("<|im_start|>", "<|im_end|>")) -> Any:
    """A byte-level BPE with no merges: tokenises any text, needs no files."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    tok = Qwen2Tokenizer(vocab={c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}, merges=[])
    tok.add_special_tokens({"additional_special_tokens": list(specials)})
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


def qwen_image() -> Any:
    """Qwen-Image: 20B MMDiT (the diffusers defaults are the published config) + Qwen2.5-VL-7B text encoder."""
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    tok = byte_tokenizer()
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "vocab_size": 152064,
            "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 32, "hidden_size": 1280, "out_hidden_size": 3584},
        vocab_size=152064,
    )
    return QwenImagePipeline(
        transformer=QwenImageTransformer2DModel(),
        vae=AutoencoderKLQwenImage(),
        scheduler=cpu(FlowMatchEulerDiscreteScheduler, shift=3.0, use_dynamic_shifting=True),
        text_encoder=Qwen2_5_VLForConditionalGeneration(config),
        tokenizer=tok,
    )


def flux2_klein() -> Any:
    """FLUX.2 [klein] 4B: 5 double + 20 single blocks, 128 latent channels, Qwen3-4B text encoder."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = byte_tokenizer()
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=128,
        num_layers=5,
        num_single_layers=20,
        attention_head_dim=128,
        num_attention_heads=24,
        joint_attention_dim=3 * 2560,  # three Qwen3-4B layers' states, concatenated
        timestep_guidance_channels=256,
        axes_dims_rope=(32, 32, 32, 32),
        guidance_embeds=False,
    )
    encoder = Qwen3ForCausalLM(
        Qwen3Config(
            hidden_size=2560,
            intermediate_size=9728,
            num_hidden_layers=36,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=151936,
        )
    )
    return Flux2KleinPipeline(
        scheduler=cpu(FlowMatchEulerDiscreteScheduler, use_dynamic_shifting=True),
        text_encoder=encoder,
        tokenizer=tok,
        transformer=transformer,
        vae=AutoencoderKLFlux2(),
        is_distilled=True,
    )


def sd_turbo() -> Any:
    """SD-Turbo: the SD 2.1 UNet (865M) with OpenCLIP-H text encoder."""
    import torch
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = {c: i for i, c in enumerate(sorted(__import__("tokenizers").pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({c + "</w>": len(vocab) + i for i, c in enumerate(list(vocab))})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    tok = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    unet = UNet2DConditionModel(
        sample_size=64,
        block_out_channels=(320, 640, 1280, 1280),
        cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20),
        use_linear_projection=True,
    )
    encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=23,
            projection_dim=1024,
            hidden_act="gelu",
            vocab_size=49408,
        )
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
    )
    with torch.device("cpu"):  # schedulers build numpy tables from tensors, which only works on the CPU
        scheduler = EulerAncestralDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            timestep_spacing="trailing",
            steps_offset=1,
        )
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=encoder,
        tokenizer=tok,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


BUILDERS: dict[str, Callable[[], Any]] = {"qwen_image": qwen_image, "flux2_klein": flux2_klein, "sd_turbo": sd_turbo}


class UtilisationSampler:
    """``nvidia-smi``'s GPU utilisation every ``interval_s`` while running."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.samples: list[float] = []
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> UtilisationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"]
        while not self._stop.wait(self._interval_s):
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=5, check=True).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return  # no nvidia-smi: utilisation is reported as unknown


def measure(name: str, size: int, repeats: int, steps: int | None, batch: int) -> dict[str, Any]:
    import torch

    family = FAMILIES[name]
    caps = family.capabilities
    steps = steps or caps.default_steps
    torch.cuda.reset_peak_memory_stats()
    started = time.monotonic()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):  # random init on the GPU: seconds, where the CPU would take minutes
            pipe = BUILDERS[name]()
    finally:
        torch.set_default_dtype(previous)
    pipe.to("cuda", torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    pipeline = family.pipelines(pipe)[Task.GENERATE]
    build_s = time.monotonic() - started
    requests = [
        Request(
            i, Task.GENERATE, "a lighthouse at dusk", (), size, size, steps, caps.default_guidance, i, "image/png", None
        )
        for i in range(batch)
    ]
    step_times: list[float] = []

    def on_step(p: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        step_times.append(time.monotonic())
        return tensors

    def call() -> float:
        generators = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        torch.cuda.synchronize()
        t0 = time.monotonic()
        with torch.inference_mode():
            family.run(pipeline, requests, [[] for _ in requests], generators, on_step)
        torch.cuda.synchronize()
        return time.monotonic() - t0

    warmup_s = call()
    step_times.clear()
    with UtilisationSampler() as sampler:
        seconds = [call() for _ in range(repeats)]
    per_call = statistics.median(seconds)
    return {
        "family": name,
        "size": size,
        "steps": steps,
        "batch": batch,
        "build_s": round(build_s, 1),
        "warmup_s": round(warmup_s, 2),
        "seconds_per_call": [round(s, 3) for s in seconds],
        "seconds_per_image": round(per_call / batch, 3),
        "seconds_per_step": round(per_call / steps, 4),
        "gpu_utilisation_mean": round(statistics.fmean(sampler.samples), 1) if sampler.samples else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--family", action="append", choices=sorted(BUILDERS), help="default: all")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=None, help="default: each family's")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("local_models: torch is not installed (pip install -e '.[local]'); nothing to measure")
        return 0
    if not torch.cuda.is_available():
        print("local_models: no CUDA GPU here; these benchmarks measure GPU compute at 1024², so nothing ran")
        return 0
    results = []
    for name in args.family or sorted(BUILDERS):
        result = measure(name, args.size, args.repeats, args.steps, args.batch)
        print(json.dumps(result), flush=True)
        results.append(result)
        torch.cuda.empty_cache()
    if args.out:
        with open(args.out, "w") as sink:
            json.dump(results, sink, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
