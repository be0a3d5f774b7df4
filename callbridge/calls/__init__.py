"""The pure call-state tracker: typed AMI events in, call/queue/conference domain events out."""

from callbridge.calls.model import Bridge, Call, CallState, Channel, Conference, ConferenceParty, Queue, QueueCaller
from callbridge.calls.tracker import CallTracker

__all__ = [
    "Bridge", "Call", "CallState", "CallTracker", "Channel", "Conference", "ConferenceParty", "Queue", "QueueCaller",
]  # fmt: skip
