"""The OpenAI Chat Completions dialect for image models, as OpenRouter serves them (``modalities``,
``image_config``, images in ``message.images``): ``wire`` parses and checks the body, ``translate`` maps it to a
job and renders completions and stream chunks, ``routes`` is the HTTP glue. Error bodies are OpenAI's
(``dialects.openai_common``).
"""
