"""Tests of the OpenAI Images dialect: parsing, translation, rendering and errors."""
