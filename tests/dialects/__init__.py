"""Tests of the API dialects."""
