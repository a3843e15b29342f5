"""Tiny random-weight pipelines of each supported family, built from configs in memory and saved to disk.

Nothing is downloaded: tokenizers are byte-level BPEs made from the 256 byte symbols, every model is a tiny
config with random weights. Saving them with ``save_pretrained`` gives directories laid out like the real
checkpoints, so the provider loads them through the same ``from_pretrained`` path as a real model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers.pre_tokenizers import ByteLevel

BYTES = sorted(ByteLevel.alphabet())
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    vocab = {c: i for i, c in enumerate(BYTES)}
    vocab.update({c + "</w>": len(BYTES) + i for i, c in enumerate(BYTES)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _qwen_tokenizer(*specials: str) -> Any:
    from transformers import Qwen2Tokenizer

    tok = Qwen2Tokenizer(vocab={c: i for i, c in enumerate(BYTES)}, merges=[])
    tok.add_special_tokens({"additional_special_tokens": list(specials)})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def sd_turbo(path: Path) -> Path:
    """A Stable Diffusion pipeline (the SD-Turbo layout) with an Euler-ancestral trailing scheduler."""
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = _clip_tokenizer()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        latent_channels=4,
        norm_num_groups=2,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
    )
    te = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=8,
            intermediate_size=16,
            num_attention_heads=2,
            num_hidden_layers=2,
            vocab_size=len(tok),
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    sched = EulerAncestralDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=te,
        tokenizer=tok,
        scheduler=sched,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(path)
    return path


def flux2_klein(path: Path) -> Path:
    """A FLUX.2 [klein] pipeline: Qwen3 text encoder with a chat template, one-channel VAE."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = _qwen_tokenizer("<|im_start|>", "<|im_end|>")
    torch.manual_seed(0)
    tr = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=16,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=False,
    )
    te = Qwen3ForCausalLM(
        Qwen3Config(
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            vocab_size=len(tok),
            max_position_embeddings=512,
        )
    )
    vae = AutoencoderKLFlux2(
        sample_size=32,
        down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",),
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), text_encoder=te, tokenizer=tok, transformer=tr, vae=vae
    )
    pipe.save_pretrained(path)
    return path


def qwen_image_edit_plus(path: Path) -> Path:
    """A Qwen-Image-Edit-2509 style checkpoint: the Edit-Plus pipeline plus a ``processor/`` folder.

    Without torchvision the Qwen2-VL processor cannot save itself, so its two halves (tokenizer and the PIL
    image processor) are written into ``processor/`` and named in ``model_index.json``, as in the real repo.
    """
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = _qwen_tokenizer(
        "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"
    )
    ids = tok.convert_tokens_to_ids
    torch.manual_seed(0)
    tr = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=16,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=24,
        z_dim=4,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    cfg = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": len(tok),
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16,
        vocab_size=len(tok),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    te = Qwen2_5_VLForConditionalGeneration(cfg).eval()
    pipe = QwenImageEditPlusPipeline(
        transformer=tr,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=te,
        tokenizer=tok,
        processor=None,
    )
    pipe.save_pretrained(path)
    tok.save_pretrained(path / "processor")
    Qwen2VLImageProcessorPil().save_pretrained(path / "processor")
    index_path = path / "model_index.json"
    index = json.loads(index_path.read_text())
    index["processor"] = ["transformers", "Qwen2VLProcessor"]
    index_path.write_text(json.dumps(index, indent=2))
    return path
