"""Upload the MRR chart to Slack with the external upload flow.

`files.upload` is retired; the flow is files.getUploadURLExternal (a URL and a file id),
POST the bytes to that URL, then files.completeUploadExternal to share the file in a
channel (optionally in a thread). Alt text travels with the first call.
"""

from __future__ import annotations

import logging

import httpx
from slack_sdk import WebClient

logger = logging.getLogger(__name__)

ALT_TEXT_LIMIT = 1000  # Slack: alt_txt_too_large above 1000 characters


class ChartUploadError(RuntimeError):
    """The bytes did not reach Slack's upload URL."""


def upload_chart(
    client: WebClient,
    *,
    channel: str,
    png: bytes,
    title: str,
    alt_text: str,
    thread_ts: str | None = None,
    filename: str = "mrr.png",
) -> str:
    """Share `png` in `channel` (and `thread_ts`); returns Slack's file id. Slack API errors
    raise `slack_sdk.errors.SlackApiError`; a failed byte upload raises ChartUploadError."""
    ticket = client.files_getUploadURLExternal(
        filename=filename, length=len(png), alt_txt=alt_text[:ALT_TEXT_LIMIT]
    )
    upload_url, file_id = ticket["upload_url"], ticket["file_id"]
    try:
        response = httpx.post(
            upload_url,
            content=png,
            headers={"Content-Type": "application/octet-stream"},
            timeout=client.timeout,
        )
    except httpx.HTTPError as exc:
        raise ChartUploadError(f"upload of {file_id} failed: {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise ChartUploadError(f"upload of {file_id} failed with HTTP {response.status_code}")
    client.files_completeUploadExternal(
        files=[{"id": file_id, "title": title}], channel_id=channel, thread_ts=thread_ts
    )
    logger.info("revenue.chart.uploaded", extra={"file_id": file_id, "channel": channel})
    return file_id
