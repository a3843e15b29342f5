"""The emulator provider: exact sizes, visible edits, deterministic bytes, refusals, failures and usage.

Input images are drawn here with Pillow; outputs are decoded and checked pixel by pixel where it matters.
"""

from __future__ import annotations

import io
from importlib.metadata import entry_points

import pytest
from PIL import Image, ImageChops, ImageDraw

from imagegate.core.capabilities import NANO_BANANA, ModelSpec, estimate_text_tokens
from imagegate.core.images import ASPECT_RATIOS, HEIC, ImageInput
from imagegate.core.jobs import FinishReason, Generation, JobSpec, Modality, Role, Turn
from imagegate.core.ports import ImageProvider
from imagegate.errors import InvalidRequest, UpstreamRateLimited, UpstreamTimeout, UpstreamUnavailable
from imagegate.providers.emulator import EmulatorOptions, EmulatorProvider
from imagegate.providers.emulator_canvas import Edits, layout, parse_edits

RED, GREEN, BLUE, YELLOW = (230, 20, 20), (20, 200, 40), (20, 40, 230), (240, 220, 0)
CAPTION_FILL = (24, 24, 28)


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def provider(**options: object) -> EmulatorProvider:
    return EmulatorProvider(EmulatorOptions.model_validate(options), sleep=RecordingSleep())


def image(size: tuple[int, int], colour: tuple[int, int, int] = RED) -> ImageInput:
    return _encode(Image.new("RGB", size, colour))


def quadrants(size: int = 600) -> ImageInput:
    """Red top-left, green top-right, blue bottom-left, yellow bottom-right: every turn looks different."""
    im = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(im)
    half = size // 2
    corners = [(0, 0), (half, 0), (0, half), (half, half)]
    for (x, y), colour in zip(corners, [RED, GREEN, BLUE, YELLOW], strict=True):
        draw.rectangle((x, y, x + half - 1, y + half - 1), fill=colour)
    return _encode(im)


def _encode(im: Image.Image) -> ImageInput:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return ImageInput.from_bytes(buf.getvalue())


def ask(*parts: str | ImageInput, **fields: object) -> JobSpec:
    return JobSpec(model=NANO_BANANA.id, turns=(Turn(Role.USER, parts),), **fields)  # type: ignore[arg-type]


async def run(spec: JobSpec, emulator: EmulatorProvider | None = None, model: ModelSpec = NANO_BANANA) -> Generation:
    return await (emulator or provider()).generate(spec, model, "emulator-upstream")


async def picture(spec: JobSpec) -> Image.Image:
    generation = await run(spec)
    assert len(generation.images) == 1
    return Image.open(io.BytesIO(generation.images[0].data))


def content_of(im: Image.Image) -> Image.Image:
    return im.crop(layout(*im.size).content)


def colour_share(im: Image.Image, colour: tuple[int, int, int]) -> float:
    counts = {c: n for n, c in im.getcolors(maxcolors=im.width * im.height) or []}
    return counts.get(colour, 0) / (im.width * im.height)


# --- sizes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ASPECT_RATIOS))
async def test_each_aspect_ratio_gives_its_exact_size(name: str) -> None:
    generation = await run(ask("a lighthouse", aspect_ratio=name))
    out = generation.images[0]
    assert (out.width, out.height) == (ASPECT_RATIOS[name].width, ASPECT_RATIOS[name].height)
    decoded = Image.open(io.BytesIO(out.data))
    assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "RGB", (out.width, out.height))
    assert out.mime_type == "image/png"


async def test_default_is_square_1024() -> None:
    assert (await picture(ask("a lighthouse"))).size == (1024, 1024)


async def test_without_aspect_ratio_the_output_follows_the_input() -> None:
    assert (await picture(ask("add a hat", image((1600, 900))))).size == (1344, 768)


async def test_an_unsupported_aspect_ratio_is_a_bad_request() -> None:
    with pytest.raises(InvalidRequest, match="1:4"):
        await run(ask("x", aspect_ratio="1:4"))
    only_square = ModelSpec(id="m", display_name="m", aspect_ratios=("1:1",))
    with pytest.raises(InvalidRequest):
        await run(ask("x", aspect_ratio="16:9"), model=only_square)


async def test_a_chat_edits_the_most_recent_image() -> None:
    spec = JobSpec(
        model=NANO_BANANA.id,
        turns=(
            Turn(Role.USER, ("a green field",)),
            Turn(Role.MODEL, ("here it is", image((900, 1600), GREEN))),
            Turn(Role.USER, ("now add a moon",)),
        ),
    )
    im = await picture(spec)
    assert im.size == (768, 1344)  # the previous image's 9:16
    assert colour_share(content_of(im), GREEN) > 0.4


async def test_an_image_it_cannot_decode_still_gives_a_picture() -> None:
    heic = ImageInput(data=b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64, mime_type=HEIC)
    assert (await picture(ask("make it pop", heic))).size == (1024, 1024)


# --- determinism and what the picture shows ------------------------------------------------------------------


async def test_same_request_same_bytes_and_different_prompts_differ() -> None:
    spec = ask("a cat in a hat", image((300, 200), BLUE))
    first, second = await run(spec), await run(spec, provider(seed=99))
    assert first.images[0].data == second.images[0].data
    other = await run(ask("a dog in a hat", image((300, 200), BLUE)))
    assert other.images[0].data != first.images[0].data


async def test_greyscale_makes_every_composed_pixel_grey() -> None:
    content = content_of(await picture(ask("make it black and white", quadrants())))
    r, g, b = content.split()
    assert ImageChops.difference(r, g).getbbox() is None
    assert ImageChops.difference(g, b).getbbox() is None
    assert len(content.getcolors(maxcolors=1 << 20) or []) > 2  # grey, not blank


async def test_a_red_input_made_blue_is_dominantly_blue() -> None:
    content = content_of(await picture(ask("make it blue", image((1024, 1024), RED))))
    r, g, b = content.split()
    over_red = ImageChops.subtract(b, r).point(lambda v: 255 if v > 40 else 0)
    over_green = ImageChops.subtract(b, g).point(lambda v: 255 if v > 40 else 0)
    blue_dominant = ImageChops.darker(over_red, over_green).histogram()[255]
    assert blue_dominant / (content.width * content.height) > 0.9


@pytest.mark.parametrize(
    ("prompt", "top_left"),
    [
        ("keep it as it is", RED),
        ("rotate 90", BLUE),
        ("rotate it right", BLUE),
        ("rotate 180", YELLOW),
        ("turn it upside down", YELLOW),
        ("rotate left", GREEN),
        ("rotate by 270 degrees", GREEN),
    ],
)
async def test_rotation_turns_the_picture(prompt: str, top_left: tuple[int, int, int]) -> None:
    content = content_of(await picture(ask(prompt, quadrants())))
    quarter = content.height // 4
    centre_x, centre_y = content.width // 2, content.height // 2
    assert content.getpixel((centre_x - quarter, centre_y - quarter)) == top_left


async def test_three_inputs_all_appear() -> None:
    spec = ask("put them together", image((800, 800), RED), image((600, 900), GREEN), image((900, 600), BLUE))
    content = content_of(await picture(spec))
    for colour in (RED, GREEN, BLUE):
        assert colour_share(content, colour) > 0.05, colour


async def test_caption_and_mark_are_drawn() -> None:
    im = await picture(ask("a lighthouse at dawn"))
    plan = layout(*im.size)
    caption = im.crop(plan.caption)
    assert colour_share(caption, CAPTION_FILL) < 0.99  # text pixels on the band
    assert colour_share(caption, (255, 255, 255)) > 0.002
    mark = im.crop(plan.mark)
    assert colour_share(mark, (255, 208, 0)) > 0.5
    assert colour_share(mark, (0, 0, 0)) > 0.005
    other = await picture(ask("a windmill at dusk"))
    assert other.crop(plan.caption).tobytes() != caption.tobytes()


@pytest.mark.parametrize(
    ("prompt", "edits"),
    [
        ("a cat", Edits()),
        ("Make it GRAYSCALE", Edits(greyscale=True)),
        ("monochrome please", Edits(greyscale=True)),
        ("rotate 90 degrees counterclockwise", Edits(rotate=270)),
        ("rotate it clockwise", Edits(rotate=90)),
        ("rotate 45 degrees", Edits()),
        ("turn the red car teal", Edits(tint="teal")),
        ("sepia, rotated 180°", Edits(rotate=180, tint="sepia")),
    ],
)
def test_parse_edits(prompt: str, edits: Edits) -> None:
    assert parse_edits(prompt) == edits


# --- text, usage and the contract ----------------------------------------------------------------------------


async def test_text_only_when_text_is_asked_for() -> None:
    both = await run(ask("a cat, greyscale", aspect_ratio="16:9"))
    assert "emulator" in both.text
    assert "16:9" in both.text
    assert "greyscale" in both.text
    image_only = await run(ask("a cat", modalities=frozenset({Modality.IMAGE})))
    assert image_only.text == ""
    assert image_only.finish_reason == FinishReason.STOP
    assert image_only.model_version == "emulator-upstream"


async def test_usage_counts_every_image_of_the_conversation() -> None:
    spec = JobSpec(
        model=NANO_BANANA.id,
        turns=(
            Turn(Role.USER, ("a kite", image((64, 64)))),
            Turn(Role.MODEL, (image((64, 64), GREEN),)),
            Turn(Role.USER, ("add clouds", image((64, 64), BLUE))),
        ),
        system_instruction="be brief",
    )
    generation = await run(spec)
    usage = generation.usage
    assert usage.input_image_tokens == 3 * 258
    assert usage.input_text_tokens == sum(estimate_text_tokens(t) for t in ("a kite", "", "add clouds", "be brief"))
    assert usage.output_image_tokens == 1290
    assert usage.output_text_tokens == estimate_text_tokens(generation.text) > 0


async def test_blocked_prompt() -> None:
    generation = await run(ask("please EMULATE:BLOCKED this", image((64, 64))))
    assert generation.images == ()
    assert generation.block_reason == "PROHIBITED_CONTENT"
    assert generation.finish_reason is None
    assert generation.usage.input_image_tokens == 258
    assert generation.usage.input_text_tokens > 0
    assert generation.usage.output_tokens == 0


async def test_image_safety() -> None:
    generation = await run(ask("emulate:image_safety"))
    assert generation.images == ()
    assert generation.finish_reason == FinishReason.IMAGE_SAFETY
    assert generation.finish_message is not None
    assert "Unable to show the generated image" in generation.finish_message
    assert "You will not be charged for blocked images" in generation.finish_message
    assert "emulator" in generation.finish_message
    assert generation.usage.output_tokens == 0


@pytest.mark.parametrize("spec", [ask("emulate:no_image"), ask(""), ask("   ")])
async def test_no_image(spec: JobSpec) -> None:
    generation = await run(spec)
    assert (generation.images, generation.finish_reason) == ((), FinishReason.NO_IMAGE)
    assert generation.usage.output_tokens == 0


async def test_configured_terms_replace_the_defaults() -> None:
    emulator = provider(block_terms="forbidden, nope", safety_terms=["unsafe"])
    assert (await run(ask("something Forbidden"), emulator)).block_reason == "PROHIBITED_CONTENT"
    assert (await run(ask("unsafe"), emulator)).finish_reason == FinishReason.IMAGE_SAFETY
    assert (await run(ask("emulate:blocked"), emulator)).images  # no longer a trigger


@pytest.mark.parametrize(
    ("trigger", "error"),
    [
        ("emulate:unavailable", UpstreamUnavailable),
        ("emulate:rate_limited", UpstreamRateLimited),
        ("emulate:timeout", UpstreamTimeout),
    ],
)
async def test_failure_triggers(trigger: str, error: type[Exception]) -> None:
    with pytest.raises(error, match="emulator"):
        await run(ask(f"a cat {trigger.upper()}"), provider(retry_after_s=7))


async def test_rate_limit_reports_retry_after() -> None:
    with pytest.raises(UpstreamRateLimited) as caught:
        await run(ask("emulate:rate_limited"), provider(retry_after_s=7))
    assert caught.value.retry_after_s == 7


async def test_failure_rate_one_always_fails_and_zero_never() -> None:
    always = provider(failure_rate=1, failure="timeout")
    for _ in range(20):
        with pytest.raises(UpstreamTimeout):
            await run(ask("emulate:no_image"), always)
    never = provider(failure_rate=0)
    for _ in range(20):
        assert (await run(ask("emulate:no_image"), never)).finish_reason == FinishReason.NO_IMAGE


async def test_random_failures_are_reproducible_from_the_seed() -> None:
    async def outcomes(seed: int) -> list[bool]:
        emulator = provider(failure_rate=0.5, seed=seed)
        results = []
        for _ in range(40):
            try:
                await run(ask("emulate:no_image"), emulator)
                results.append(True)
            except UpstreamUnavailable:
                results.append(False)
        return results

    first = await outcomes(3)
    assert first == await outcomes(3)
    assert 5 < first.count(False) < 35


async def test_latency_goes_through_the_injected_sleep() -> None:
    sleep = RecordingSleep()
    await EmulatorProvider(EmulatorOptions(latency_ms=250), sleep=sleep).generate(
        ask("emulate:no_image"), NANO_BANANA, "u"
    )
    assert sleep.calls == [0.25]

    jittery = RecordingSleep()
    emulator = EmulatorProvider(EmulatorOptions(latency_ms=1000, latency_jitter_ms=200, seed=1), sleep=jittery)
    for _ in range(10):
        await emulator.generate(ask("emulate:no_image"), NANO_BANANA, "u")
    assert all(0.8 <= s <= 1.2 for s in jittery.calls)
    assert len(set(jittery.calls)) > 1

    idle = RecordingSleep()
    await EmulatorProvider(sleep=idle).generate(ask("emulate:no_image"), NANO_BANANA, "u")
    assert idle.calls == []


def test_from_options_builds_and_validates() -> None:
    emulator = EmulatorProvider.from_options({"latency_ms": "200", "failure": "rate_limited"})
    assert isinstance(emulator, ImageProvider)
    assert emulator.options.latency_ms == 200
    with pytest.raises(ValueError, match=r"unknown option 'latency' .*known options: latency_ms"):
        EmulatorProvider.from_options({"latency": 5})
    with pytest.raises(ValueError, match="failure_rate"):
        EmulatorProvider.from_options({"failure_rate": 1.5})
    with pytest.raises(ValueError, match="failure"):
        EmulatorProvider.from_options({"failure": "explode"})
    with pytest.raises(ValueError, match="empty"):
        EmulatorProvider.from_options({"block_terms": ["ok", " "]})


def test_the_entry_point_names_the_emulator() -> None:
    (entry,) = [ep for ep in entry_points(group="imagegate.providers") if ep.name == "emulator"]
    assert entry.load() is EmulatorProvider


async def test_aclose() -> None:
    await provider().aclose()


# -- thinking models (Nano Banana Pro, Nano Banana 2) ------------------------------------------------------


async def test_a_thinking_model_signs_its_answer_and_thinks_out_loud_only_when_asked() -> None:
    from imagegate.core.catalog import builtin_model

    pro = builtin_model("gemini-3-pro-image")
    hidden = await run(ask("a lighthouse"), model=pro)
    assert hidden.thoughts == () and hidden.usage.thoughts_tokens > 0  # thinking is billed either way
    assert hidden.text_signature and hidden.image_signatures and hidden.image_signatures[0]
    shown = await run(ask("a lighthouse", include_thoughts=True), model=pro)
    (thought,) = shown.thoughts
    assert "imagegate emulator" in thought.text and thought.image is None
    assert shown.image_signatures == hidden.image_signatures  # the same request, the same opaque signature


async def test_a_model_that_does_not_think_has_no_thoughts_or_signatures() -> None:
    plain = await run(ask("a lighthouse", include_thoughts=True))
    assert plain.thoughts == () and plain.text_signature is None and plain.image_signatures == ()
    assert plain.usage.thoughts_tokens == 0


def test_the_emulator_cannot_search() -> None:
    features = EmulatorProvider.capabilities({}).features or frozenset()
    assert "grounding" not in features and "thinking" in features
