"""The Gemini Files API driven by the google-genai SDK: resumable upload, get, list, delete, use in requests."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from google import genai
from google.genai import errors, types

from .conftest import genai_client
from .images import open_bytes, png_bytes, solid
from .server import Server, cli

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash-image"


def _upload(client: genai.Client, data: bytes, mime_type: str = "image/png", name: str = "red") -> types.File:
    return client.files.upload(
        file=io.BytesIO(data), config=types.UploadFileConfig(mime_type=mime_type, display_name=name)
    )


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_upload_get_use_list_delete(server: Server, api_version: str | None) -> None:
    client = genai_client(server, api_version=api_version)
    data = png_bytes(solid((220, 30, 30), (600, 400)))
    uploaded = _upload(client, data)
    assert uploaded.state == types.FileState.ACTIVE and uploaded.size_bytes == len(data)
    assert uploaded.name and uploaded.name.startswith("files/") and uploaded.uri and uploaded.expiration_time
    assert uploaded.update_time and (uploaded.expiration_time - uploaded.update_time).total_seconds() == 48 * 3600
    fetched = client.files.get(name=uploaded.name)
    assert fetched.uri == uploaded.uri and fetched.display_name == "red" and fetched.mime_type == "image/png"
    # The file as an input: generateContent, the stream and countTokens all read it from the store.
    response = client.models.generate_content(model=MODEL, contents=[uploaded, "keep it"])
    parts = response.candidates[0].content.parts  # type: ignore[index, union-attr]
    image = next(p.inline_data.data for p in parts if p.inline_data)  # type: ignore[union-attr]
    assert open_bytes(image).size == (1248, 832)  # 3:2 from the uploaded picture
    streamed = list(client.models.generate_content_stream(model=MODEL, contents=[uploaded, "again"]))
    assert any(p.inline_data for c in streamed for p in c.candidates[0].content.parts or [])  # type: ignore[index, union-attr]
    counted = client.models.count_tokens(model=MODEL, contents=[uploaded, "x"])
    assert counted.total_tokens and counted.total_tokens >= 258
    names = [f.name for f in client.files.list()]
    assert uploaded.name in names
    client.files.delete(name=uploaded.name)
    with pytest.raises(errors.ClientError) as gone:
        client.files.get(name=uploaded.name)
    assert gone.value.code == 404


def test_other_keys_files_are_not_found(server: Server) -> None:
    mine = genai_client(server)
    uploaded = _upload(mine, png_bytes(solid((10, 200, 10))))
    other_key = json.loads(cli(server.home, "keys", "create", "--name", "o", "--json", env=server.extra_env))["key"]
    theirs = genai_client(server, key=other_key)
    with pytest.raises(errors.ClientError) as hidden:
        theirs.files.get(name=uploaded.name or "")
    assert hidden.value.code == 404
    with pytest.raises(errors.ClientError) as refused:
        theirs.models.generate_content(model=MODEL, contents=[uploaded, "x"])
    assert refused.value.code == 400 and "not available" in str(refused.value.message)
    assert uploaded.name not in [f.name for f in theirs.files.list()]
    with pytest.raises(errors.ClientError):
        theirs.files.delete(name=uploaded.name or "")
    assert mine.files.get(name=uploaded.name or "").state == types.FileState.ACTIVE


def test_limits_and_types_are_refused_with_googles_errors(server: Server) -> None:
    client = genai_client(server)
    with pytest.raises(errors.ClientError) as wrong_type:
        _upload(client, b"%PDF-1.4 not an image", mime_type="application/pdf")
    assert wrong_type.value.code == 400 and "Unsupported MIME type" in str(wrong_type.value.message)
    with pytest.raises(errors.ClientError) as not_image:
        _upload(client, b"definitely not a png", mime_type="image/png")
    assert not_image.value.code == 400
    start = httpx.post(
        f"{server.url}/upload/v1beta/files",
        headers={
            "x-goog-api-key": server.key,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(10 * 1024**3),
            "X-Goog-Upload-Header-Content-Type": "image/png",
        },
        json={"file": {"display_name": "huge"}},
    )
    assert start.status_code == 400 and start.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "exceeds the maximum" in start.json()["error"]["message"]
    with pytest.raises(errors.ClientError) as unknown:
        client.models.generate_content(
            model=MODEL, contents=[types.Part.from_uri(file_uri="https://example.com/x.png", mime_type="image/png")]
        )
    assert unknown.value.code == 400


def test_chunks_in_order_with_a_retried_chunk(server: Server) -> None:
    data = png_bytes(solid((1, 2, 3), (300, 300)))
    start = httpx.post(
        f"{server.url}/upload/v1beta/files",
        headers={
            "x-goog-api-key": server.key,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(len(data)),
            "X-Goog-Upload-Header-Content-Type": "image/png",
        },
    )
    url = start.headers["x-goog-upload-url"]
    half = len(data) // 2

    def send(command: str, offset: int, body: bytes) -> httpx.Response:
        headers = {"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)}
        return httpx.post(url, headers=headers, content=body)  # no API key: the upload id authorizes

    assert send("upload", 0, data[:half]).headers["x-goog-upload-status"] == "active"
    assert send("upload", 0, data[:half]).headers["x-goog-upload-status"] == "active"  # a retry is harmless
    assert send("upload", 5, b"xx").status_code == 400  # a gap is refused
    final = send("upload, finalize", half, data[half:])
    assert final.headers["x-goog-upload-status"] == "final"
    assert final.json()["file"]["sizeBytes"] == str(len(data)) and final.json()["file"]["sha256Hash"]
    assert (
        httpx.post(url.replace("upload_id=", "upload_id=x"), headers={"X-Goog-Upload-Command": "query"}).status_code
        == 404
    )
