"""The diffusers provider end to end on the CPU: real worker processes running tiny random-weight checkpoints.

Every checkpoint was written by ``save_pretrained`` and is read back by the provider's loader, so each test
also covers the load path. Outputs are checked for size, determinism, provenance and progress.
"""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np
import pytest
from local_helpers import MODEL, ask, decode, picture

from conftest import Checkpoints
from imagegate.core.capabilities import ModelSpec
from imagegate.core.images import sniff_mime_type
from imagegate.core.jobs import FinishReason, Generation, JobSpec
from imagegate.core.progress import progress_reporter
from imagegate.errors import InvalidRequest, UpstreamRateLimited, UpstreamUnavailable
from imagegate.providers.local.capabilities import output_size, ratio_of
from imagegate.providers.local.families import family_named
from imagegate.providers.local.provenance import DIGITAL_SOURCE_TYPE, has_watermark, read_provenance
from imagegate.providers.local.provider import DiffusersProvider

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 40), (20, 40, 230)


async def generate(
    provider: DiffusersProvider, spec: JobSpec, source: str, model: ModelSpec = MODEL
) -> tuple[Generation, list[tuple[int, int]]]:
    steps: list[tuple[int, int]] = []
    with progress_reporter(lambda done, total: steps.append((done, total))):
        generation = await provider.generate(spec, model, source)
    return generation, steps


def pixels(generation: Generation) -> np.ndarray:
    return np.asarray(decode(generation.images[0].data), dtype=np.int16)


# ---- text to image, sizes, progress, seeds ---------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ["1:1", "16:9", "2:3"])
async def test_sd_turbo_makes_an_image_of_the_requested_ratio_on_its_grid(
    sd: DiffusersProvider, checkpoints: Checkpoints, ratio: str
) -> None:
    generation, steps = await generate(sd, ask("a red bicycle", seed=1, aspect_ratio=ratio), checkpoints.sd_turbo)
    expected = output_size(ratio_of(ratio), 64, family_named("sd_turbo").capabilities)
    (image,) = generation.images
    assert (image.width, image.height) == expected == decode(image.data).size
    assert image.mime_type == "image/png" and image.data.startswith(b"\x89PNG")
    assert generation.finish_reason == FinishReason.STOP and generation.model_version == checkpoints.sd_turbo
    assert generation.usage.total_tokens == 0  # no tokens: the catalog's per-image price bills it
    assert steps == [(1, 2), (2, 2)]  # each denoising step, as it finished


async def test_the_same_seed_gives_the_same_image_and_another_seed_another(
    sd: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    first, _ = await generate(sd, ask("a lighthouse", seed=42), checkpoints.sd_turbo)
    again, _ = await generate(sd, ask("a lighthouse", seed=42), checkpoints.sd_turbo)
    other, _ = await generate(sd, ask("a lighthouse", seed=43), checkpoints.sd_turbo)
    assert first.images[0].data == again.images[0].data
    assert np.abs(pixels(first) - pixels(other)).max() > 10


async def test_without_a_seed_one_is_chosen_and_written_into_the_image(
    sd: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    generation, _ = await generate(sd, ask("a lighthouse"), checkpoints.sd_turbo)
    declared = read_provenance(generation.images[0].data)
    seed = int(declared["xmp"].split('imagegate:Seed="')[1].split('"')[0])
    replay, _ = await generate(sd, ask("a lighthouse", seed=seed), checkpoints.sd_turbo)
    assert replay.images[0].data == generation.images[0].data


async def test_outputs_say_they_are_ai_generated_in_every_format(
    sd: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    for mime in ("image/png", "image/jpeg", "image/webp"):
        generation, _ = await generate(sd, ask("a fox", seed=5, output_mime_type=mime), checkpoints.sd_turbo)
        image = generation.images[0]
        declared = read_provenance(image.data)
        assert image.mime_type == mime and sniff_mime_type(image.data) == mime
        assert f'Iptc4xmpExt:DigitalSourceType="{DIGITAL_SOURCE_TYPE}"' in declared["xmp"]
        assert "sd-turbo" in declared["xmp"] and 'imagegate:Seed="5"' in declared["xmp"]
        assert declared["Software"] == "imagegate" and "AI-generated" in declared["Description"]
        assert str(checkpoints.sd_turbo) not in declared["xmp"]  # a local path is not leaked, only its name


async def test_concurrent_same_shape_requests_run_as_one_batch_with_their_own_seeds(
    sd: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    alone, _ = await generate(sd, ask("a tram", seed=7, aspect_ratio="4:3"), checkpoints.sd_turbo)
    before = sd.stats(checkpoints.sd_turbo).batched
    together = await asyncio.gather(
        *(
            generate(sd, ask(p, seed=s, aspect_ratio="4:3"), checkpoints.sd_turbo)
            for p, s in [("a tram", 7), ("b", 8), ("c", 9)]
        )
    )
    assert sd.stats(checkpoints.sd_turbo).batched - before == 3
    # the batched image of seed 7 is the image seed 7 makes alone (up to float rounding of a batched matmul)
    assert np.abs(pixels(together[0][0]) - pixels(alone)).max() <= 1
    assert np.abs(pixels(together[0][0]) - pixels(together[1][0])).max() > 10


async def test_an_empty_prompt_is_a_refusal_not_an_error(sd: DiffusersProvider, checkpoints: Checkpoints) -> None:
    generation, _ = await generate(sd, ask("   "), checkpoints.sd_turbo)
    assert generation.refused and generation.finish_reason == FinishReason.NO_IMAGE


# ---- edits and references -------------------------------------------------------------------------------------


async def test_sd_turbo_edits_one_image_at_the_requested_size(sd: DiffusersProvider, checkpoints: Checkpoints) -> None:
    generation, steps = await generate(sd, ask("make it blue", picture((96, 48), RED), seed=3), checkpoints.sd_turbo)
    expected = output_size(ratio_of("16:9"), 64, family_named("sd_turbo").capabilities)  # 16:9 is nearest to 2:1
    assert (generation.images[0].width, generation.images[0].height) == expected
    assert steps and steps[-1][0] == steps[-1][1]


async def test_sd_turbo_refuses_a_second_reference_before_any_work(
    sd: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    before = sd.stats(checkpoints.sd_turbo)
    with pytest.raises(InvalidRequest, match="at most 1 input image") as caught:
        await sd.generate(ask("merge", picture((64, 64), RED), picture((64, 64), BLUE)), MODEL, checkpoints.sd_turbo)
    assert caught.value.field == "input_images"
    after = sd.stats(checkpoints.sd_turbo)
    # no image was made (the worker may have started, alone, to learn the checkpoint's family)
    assert (after.images, after.failures) == (before.images, before.failures)


async def test_qwen_edit_takes_one_to_three_references(qwen: DiffusersProvider, checkpoints: Checkpoints) -> None:
    refs = [picture((40, 32), RED), picture((32, 32), GREEN), picture((32, 48), BLUE)]
    for count in (1, 2, 3):
        generation, steps = await generate(qwen, ask("put them together", *refs[:count], seed=1), checkpoints.qwen_edit)
        assert len(generation.images) == 1 and steps[-1] == (2, 2)
    with pytest.raises(InvalidRequest, match="at most 3 input images"):
        await qwen.generate(
            ask("four", *refs, refs[0]), ModelSpec(id="m", display_name="m", max_input_images=4), checkpoints.qwen_edit
        )


async def test_a_request_runs_its_own_steps_and_its_negative_prompt_changes_the_image(
    qwen: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    plain, steps = await generate(qwen, ask("a cat", seed=5, steps=3), checkpoints.qwen_t2i)
    assert steps[-1] == (3, 3)  # the caller's steps, not the deployment's 2
    negated, _ = await generate(qwen, ask("a cat", seed=5, steps=3, negative_prompt="dogs"), checkpoints.qwen_t2i)
    assert np.abs(pixels(plain) - pixels(negated)).max() > 0  # true CFG against it: not ignored


async def test_qwen_text_to_image_runs_on_the_edit_checkpoint_and_is_seeded(
    qwen: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    first, _ = await generate(qwen, ask("a poster that says hello", seed=9, aspect_ratio="16:9"), checkpoints.qwen_edit)
    again, _ = await generate(qwen, ask("a poster that says hello", seed=9, aspect_ratio="16:9"), checkpoints.qwen_edit)
    image = first.images[0]
    assert (image.width, image.height) == output_size((16, 9), 32, family_named("qwen_image").capabilities)
    assert image.data == again.images[0].data


async def test_a_text_to_image_qwen_checkpoint_refuses_edits(qwen: DiffusersProvider, checkpoints: Checkpoints) -> None:
    generation, _ = await generate(qwen, ask("a cat", seed=1), checkpoints.qwen_t2i)
    assert len(generation.images) == 1
    with pytest.raises(InvalidRequest, match="at most 0 input images"):
        await qwen.generate(ask("edit", picture((32, 32), RED)), MODEL, checkpoints.qwen_t2i)


async def test_flux2_klein_generates_and_edits_with_several_references(
    flux2: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    made, steps = await generate(flux2, ask("a cat", seed=4, aspect_ratio="3:2"), checkpoints.flux2_klein)
    assert (made.images[0].width, made.images[0].height) == output_size(
        (3, 2), 32, family_named("flux2_klein").capabilities
    )
    assert steps == [(1, 2), (2, 2)]
    edited, _ = await generate(
        flux2,
        ask("the cat wearing the hat", picture((64, 64), RED), picture((64, 80), BLUE), seed=4),
        checkpoints.flux2_klein,
    )
    assert len(edited.images) == 1 and np.abs(pixels(edited).astype(int)).sum() > 0


async def test_a_chat_turn_without_images_edits_the_previous_output(
    sd: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    from imagegate.core.jobs import Role, Turn

    spec = JobSpec(
        model=MODEL.id,
        turns=(
            Turn(Role.USER, ("a house",)),
            Turn(Role.MODEL, (picture((64, 32), GREEN),)),
            Turn(Role.USER, ("now at night",)),
        ),
        seed=2,
    )
    generation, _ = await generate(sd, spec, checkpoints.sd_turbo)
    # the previous image is 2:1, so the edit keeps that shape
    assert generation.images[0].width > generation.images[0].height


# ---- watermark, cancellation, queue bound, failures ------------------------------------------------------------


async def test_large_outputs_carry_the_invisible_watermark(
    sd_large: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    generation, _ = await generate(sd_large, ask("a field", seed=11), checkpoints.sd_turbo)
    image = decode(generation.images[0].data)
    assert image.size == (256, 256) and has_watermark(image)


async def test_cancelling_stops_the_denoising_loop_and_frees_the_place(
    sd_slow: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    source = checkpoints.sd_turbo
    await generate(sd_slow, ask("warm up", seed=1), source)  # the worker is up: only the cancel is timed below
    before = sd_slow.stats(source)
    first_step = asyncio.Event()

    async def call() -> Generation:
        with progress_reporter(lambda done, total: first_step.set()):
            return await sd_slow.generate(ask("a long one", seed=2), MODEL, source)

    task = asyncio.create_task(call())
    await asyncio.wait_for(first_step.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until_idle(sd_slow, source)
    after = sd_slow.stats(source)
    assert after.cancelled_steps_asked - before.cancelled_steps_asked == 50
    assert after.cancelled_steps_run - before.cancelled_steps_run < 50  # it stopped early, not at the end
    # the place is free again: a new request runs at once
    generation, _ = await generate(sd_slow, ask("after", seed=3), source)
    assert generation.images


async def test_a_full_queue_is_refused_with_a_retry_after(sd_slow: DiffusersProvider, checkpoints: Checkpoints) -> None:
    source = checkpoints.sd_turbo
    await generate(sd_slow, ask("warm up", seed=1), source)
    # one running and one waiting fill this worker (max_batch 1, queue_size 1)
    held = [asyncio.create_task(sd_slow.generate(ask(f"busy {i}", seed=i), MODEL, source)) for i in range(2)]
    await asyncio.sleep(0.2)
    try:
        with pytest.raises(UpstreamRateLimited) as caught:
            await sd_slow.generate(ask("one too many"), MODEL, source)
        assert caught.value.retry_after_s is not None and caught.value.retry_after_s >= 1
    finally:
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)
        await until_idle(sd_slow, source)


async def until_idle(provider: DiffusersProvider, source: str) -> None:
    """Wait until the worker has let go of every request (cancelled ones are confirmed at a step's end)."""
    async with asyncio.timeout(30):
        while provider.in_flight(source):
            await asyncio.sleep(0.02)


async def test_a_dead_worker_fails_its_request_and_is_started_again(
    sd_slow: DiffusersProvider, checkpoints: Checkpoints
) -> None:
    source = checkpoints.sd_turbo
    await generate(sd_slow, ask("warm up", seed=1), source)
    starts = sd_slow.stats(source).starts
    first_step = asyncio.Event()

    async def call() -> Generation:
        with progress_reporter(lambda done, total: first_step.set()):
            return await sd_slow.generate(ask("doomed", seed=2), MODEL, source)

    task = asyncio.create_task(call())
    await asyncio.wait_for(first_step.wait(), 30)
    (pid,) = sd_slow.worker_pids(source)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(UpstreamUnavailable, match="stopped"):
        await task
    generation, _ = await generate(sd_slow, ask("revived", seed=3), source)
    assert generation.images and sd_slow.stats(source).starts == starts + 1
    assert sd_slow.worker_pids(source) != [pid]


async def test_a_missing_model_says_how_to_provide_it_and_is_not_retried_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    provider = DiffusersProvider.from_options({"devices": ["cpu"], "local_files_only": True, "restart_backoff_s": 60})
    try:
        with pytest.raises(UpstreamUnavailable, match="hf download no-such-org/no-such-model"):
            await provider.generate(ask("x"), MODEL, "no-such-org/no-such-model")
        with pytest.raises(UpstreamUnavailable, match="hf download"):
            await provider.generate(ask("x"), MODEL, "no-such-org/no-such-model")
        assert provider.stats("no-such-org/no-such-model").starts == 1  # the second failed without a new start
        with pytest.raises(UpstreamUnavailable, match=r"no model_index\.json"):
            await provider.generate(ask("x"), MODEL, str(tmp_path))
    finally:
        await provider.aclose()
