"""The ``diffusers`` provider: open-weight image models run by worker processes on this machine's GPUs or CPU.

Nothing in this package imports torch or diffusers at import time; only the worker processes do, so an API
process of an install without the ``local`` extra loads it without cost.
"""
