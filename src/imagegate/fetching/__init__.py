"""Fetching images that callers name by URL, safely: the SSRF-hardened way caller-supplied URLs become bytes.

``ImageFetcher.fetch`` accepts ``https``/``http`` URLs (only public addresses, checked on the address actually
connected to and again after every redirect, under byte, redirect and time limits) and ``data:`` URLs (decoded
locally), and returns an ``ImageInput`` whose type is sniffed from the bytes. ``FetchPolicy`` holds the limits
and the operator's allow-list of otherwise refused networks.
"""

from imagegate.fetching.fetcher import ImageFetcher, decode_data_url
from imagegate.fetching.network import Resolver
from imagegate.fetching.policy import FetchPolicy, refusal_reason

__all__ = ["FetchPolicy", "ImageFetcher", "Resolver", "decode_data_url", "refusal_reason"]
