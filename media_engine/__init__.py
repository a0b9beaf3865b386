"""The media engine: encoded WebRTC forwarding, recording and protocol conversion.

A library with an asyncio API; it imports nothing from Django or the apps.
"""

from .forwarding import ForwardedTrack, PacketSink, TrackSource
from .receiver import install as _install_receiver_hook
from .room import MediaEngine, MediaError, Publisher, Room, Subscriber

_install_receiver_hook()

__all__ = [
    "ForwardedTrack",
    "MediaEngine",
    "MediaError",
    "PacketSink",
    "Publisher",
    "Room",
    "Subscriber",
    "TrackSource",
]
