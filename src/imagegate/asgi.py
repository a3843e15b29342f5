"""The ASGI entry point for servers other than ``imagegate serve`` (``uvicorn imagegate.asgi:app``)."""

from imagegate.http.app import create_app

app = create_app(serving=True)
