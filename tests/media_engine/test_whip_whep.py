"""WHIP publish and WHEP play through the Django endpoints, with hub-signed room grants."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings

from apps.media import embedded
from apps.media.grants import room_grant
from media_engine.client import publish_clips, subscribe
from media_engine.synthetic import Clip
from tests.conftest import live_session_id

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _embedded_node() -> Iterator[None]:
    with override_settings(MEDIA_EMBEDDED=True, MEDIA_NODE="embedded"):
        yield


def signal(
    client: AsyncClient, url: str, token: str, locations: list[str] | None = None
) -> Callable[[str], Awaitable[str]]:
    async def post(sdp: str) -> str:
        response = await client.post(
            url, sdp, content_type="application/sdp", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.content
        assert response["Location"].startswith(url + "/")
        if locations is not None:
            locations.append(response["Location"])
        return response.content.decode()

    return post


async def test_whip_publisher_is_played_over_whep(video_clip: Clip, audio_clip: Clip) -> None:
    client = AsyncClient()
    sid = await sync_to_async(live_session_id)()
    pub_grant = room_grant(room_id="c1", peer_id="doctor", role="doctor", publish=True, subscribe=False, sid=sid)
    sub_grant = room_grant(room_id="c1", peer_id="patient", role="patient", publish=False, subscribe=True, sid=sid)
    locations: list[str] = []
    pub = await publish_clips(signal(client, "/media/whip/c1", pub_grant, locations), video_clip, audio_clip)
    sub = await subscribe(signal(client, "/media/whep/c1", sub_grant, locations))
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
        # The session id is not the peer's name: guessing it ends nothing.
        assert (await client.delete("/media/whip/c1/doctor")).status_code == 404
        assert (await client.delete("/media/whip/c1/" + "x" * 22)).status_code == 200
        assert "doctor" in embedded.engine().room("c1").publishers
        # The session's own Location ends it, with no grant (it may long have expired).
        whip_location, whep_location = locations
        assert (await client.delete(whip_location)).status_code == 200
        assert "doctor" not in embedded.engine().room("c1").publishers
        assert (await client.delete(whep_location)).status_code == 200
        assert "patient" not in embedded.engine().room("c1").subscribers
    finally:
        await asyncio.gather(pub.close(), sub.close())
        await embedded.shutdown()


async def test_hang_up_after_the_grant_expired_ends_only_its_own_session(video_clip: Clip, audio_clip: Clip) -> None:
    """A page that reloads publishes again (the new session replaces the old); the old
    page's late DELETE, after its grant expired, must not end the new publication."""
    client = AsyncClient()
    sid = await sync_to_async(live_session_id)()
    with override_settings(MEDIA_GRANT_TTL_SECONDS=1):
        first_grant = room_grant(room_id="c3", peer_id="doctor", role="doctor", publish=True, subscribe=False, sid=sid)
    locations: list[str] = []
    first = await publish_clips(signal(client, "/media/whip/c3", first_grant, locations), video_clip, audio_clip)
    try:
        await asyncio.sleep(2.2)  # the joining grant is now expired
        expired = await client.post(
            "/media/whip/c3", "v=0", content_type="application/sdp", headers={"Authorization": f"Bearer {first_grant}"}
        )
        assert expired.status_code == 403 and expired.json()["code"] == "grant.expired"
        fresh = room_grant(room_id="c3", peer_id="doctor", role="doctor", publish=True, subscribe=False, sid=sid)
        second = await publish_clips(signal(client, "/media/whip/c3", fresh, locations), video_clip, audio_clip)
        try:
            room = embedded.engine().room("c3")
            current = room.publishers["doctor"]
            assert (await client.delete(locations[0])).status_code == 200
            assert room.publishers.get("doctor") is current, "the stale hang-up ended the new session"
            assert (await client.delete(locations[1])).status_code == 200
            assert "doctor" not in room.publishers
        finally:
            await second.close()
    finally:
        await first.close()
        await embedded.shutdown()


async def test_a_grant_without_a_login_session_is_refused() -> None:
    """Every grant the hub issues names its login session; one signed without (an old
    grant, a tool) could never be ended at logout, so WHIP and WHEP refuse it."""
    from django.conf import settings

    from hub.crypto import grant_key
    from media_engine.grants import sign_grant

    payload = {"purpose": "room", "room": "c9", "peer": "doctor", "role": "doctor", "publish": True, "subscribe": True}
    token = sign_grant(payload, key=grant_key(), ttl_seconds=settings.MEDIA_GRANT_TTL_SECONDS)
    client = AsyncClient()
    for url in ("/media/whip/c9", "/media/whep/c9"):
        r = await client.post(url, "v=0", content_type="application/sdp", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403 and r.json()["code"] == "grant.revoked", r.content
    assert "doctor" not in embedded.engine().room("c9").publishers
    await embedded.shutdown()
