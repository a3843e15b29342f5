"""The emulator's caption wrapping is linear and bounded by what is shown (issue 15, defect 5).

A 2,000-character prompt without spaces took about two minutes of CPU and a 100,000-character one never
finished: the long word was shortened one character at a time and re-measured each time. The work is counted
here (characters measured by the font), not timed: it must not grow with the length of the word.
"""

from __future__ import annotations

from PIL import ImageFont

from imagegate.providers.emulator_canvas import _wrap


class CountingFont:
    """A font whose glyphs are all 7 px wide, counting how many characters it was asked to measure."""

    def __init__(self) -> None:
        self.measured = 0

    def getlength(self, text: str) -> float:
        self.measured += len(text)
        return 7.0 * len(text)


def _work(text: str) -> tuple[int, list[str]]:
    font = CountingFont()
    lines = _wrap(text, font, 700.0, 3)  # type: ignore[arg-type]
    return font.measured, lines


def test_a_long_word_costs_no_more_than_what_fits_on_the_caption() -> None:
    short_work, short_lines = _work("x" * 2_000)
    long_work, long_lines = _work("x" * 100_000)
    assert long_work <= short_work * 1.2
    assert short_lines == long_lines
    assert [len(line) for line in long_lines] == [100, 100, 100]
    assert long_lines[-1].endswith("…")


def test_many_short_words_cost_no_more_than_what_fits_either() -> None:
    few, _ = _work("ab " * 1_000)
    many, _ = _work("ab " * 50_000)
    assert many <= few * 1.2


def test_wrapping_is_unchanged_for_ordinary_captions() -> None:
    font = ImageFont.load_default(size=20)
    lines = _wrap("a red square on a blue background", font, 120.0, 3)
    assert " ".join(lines) == "a red square on a blue background"
    assert all(font.getlength(line) <= 120.0 for line in lines)
    cut = _wrap("supercalifragilisticexpialidocious", font, 60.0, 20)
    assert "".join(cut) == "supercalifragilisticexpialidocious"
    assert all(font.getlength(line) <= 60.0 for line in cut)


def test_text_that_does_not_fit_ends_in_an_ellipsis() -> None:
    font = ImageFont.load_default(size=20)
    lines = _wrap(" ".join(["word"] * 200), font, 150.0, 2)
    assert len(lines) == 2 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 150.0 for line in lines)
