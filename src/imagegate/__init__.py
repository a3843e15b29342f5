"""imagegate: one self-hosted service for gemini-2.5-flash-image and models like it, in every API dialect."""

__version__ = "0.1.0"
