"""Ids sort by creation time and carry ~95 random bits, drawn uniformly from the base-62 alphabet."""

from __future__ import annotations

import string
import time
from collections import Counter

from imagegate.core.ids import base62, new_id, random_base62

ALPHABET = set(string.digits + string.ascii_letters)


def test_an_id_is_prefix_time_and_sixteen_random_characters() -> None:
    job_id = new_id("job")
    prefix, _, rest = job_id.partition("_")
    assert prefix == "job" and len(rest) == 24 and set(rest) <= ALPHABET


def test_ids_sort_by_creation_time() -> None:
    first = new_id("job")
    time.sleep(0.002)
    assert new_id("job") > first


def test_random_digits_have_the_asked_length_and_never_repeat() -> None:
    drawn = {random_base62(16) for _ in range(10_000)}
    assert len(drawn) == 10_000
    assert all(len(d) == 16 and set(d) <= ALPHABET for d in drawn)
    assert random_base62(0) == ""


def test_every_digit_is_equally_likely() -> None:
    counts = Counter(random_base62(1) for _ in range(62_000))
    assert set(counts) == ALPHABET
    # 1,000 expected each; a biased draw (e.g. a plain modulo of 6 bits) would put some near 2,000 or 0
    assert min(counts.values()) > 800 and max(counts.values()) < 1_200


def test_base62_pads_to_width() -> None:
    assert base62(0, 3) == "000" and base62(61) == "z" and base62(62) == "10"
