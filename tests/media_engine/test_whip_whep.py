"""WHIP publish and WHEP play through the Django endpoints, with hub-signed room grants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from django.test import AsyncClient

from hub.media import embedded
from hub.media.grants import room_grant
from media_engine.client import publish_clips, subscribe
from media_engine.synthetic import Clip

pytestmark = pytest.mark.asyncio


def signal(client: AsyncClient, url: str, token: str) -> Callable[[str], Awaitable[str]]:
    async def post(sdp: str) -> str:
        response = await client.post(
            url, sdp, content_type="application/sdp", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.content
        assert response["Location"].startswith(url)
        return response.content.decode()

    return post


async def test_whip_publisher_is_played_over_whep(video_clip: Clip, audio_clip: Clip) -> None:
    client = AsyncClient()
    pub_grant = room_grant(room_id="c1", peer_id="doctor", role="doctor", publish=True, subscribe=False)
    sub_grant = room_grant(room_id="c1", peer_id="patient", role="patient", publish=False, subscribe=True)
    pub = await publish_clips(signal(client, "/media/whip/c1", pub_grant), video_clip, audio_clip)
    sub = await subscribe(signal(client, "/media/whep/c1", sub_grant))
    try:
        await sub.wait_count("video", 10)
        await sub.wait_count("audio", 10)
        # A subscribe-only grant cannot publish, and a grant is bound to its room.
        refused = await client.post(
            "/media/whip/c1", "v=0", content_type="application/sdp", headers={"Authorization": f"Bearer {sub_grant}"}
        )
        assert refused.status_code == 403
        other_room = await client.post(
            "/media/whep/c2", "v=0", content_type="application/sdp", headers={"Authorization": f"Bearer {sub_grant}"}
        )
        assert other_room.status_code == 403
        assert (await client.post("/media/whep/c1", "v=0", content_type="application/sdp")).status_code == 401
        ended = await client.delete("/media/whip/c1/doctor", headers={"Authorization": f"Bearer {pub_grant}"})
        assert ended.status_code == 200
        assert "doctor" not in embedded.engine().room("c1").publishers
    finally:
        await asyncio.gather(pub.close(), sub.close())
        await embedded.shutdown()
