"""Tests of the Gemini dialect: wire types, translation, rendering and errors."""
