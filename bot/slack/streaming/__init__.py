"""Live output of a run in Slack: ``SlackStreamSink`` and the parts it is made of.

* ``sink``: the ``OutputSink`` posting a progress message and a message per command, and attaching files.
* ``scheduler``: ``EditScheduler``, sharing the app's ``chat.update`` budget fairly between live messages.
* ``render``: the Block Kit of the progress and command messages.
* ``output``: a step's output, all of it for the file and its tail for the message.
* ``state``: what the sink knows of the run, and ``StreamPlan`` / ``StreamCommand`` to describe a plan.
"""

from __future__ import annotations

from bot.slack.streaming.output import OutputBuffer
from bot.slack.streaming.scheduler import EditScheduler, LiveMessage
from bot.slack.streaming.sink import OnPosted, ProgressActions, SlackStreamSink, StreamSettings
from bot.slack.streaming.state import ProgressView, StreamCommand, StreamPlan

__all__ = [
    "EditScheduler",
    "LiveMessage",
    "OnPosted",
    "OutputBuffer",
    "ProgressActions",
    "ProgressView",
    "SlackStreamSink",
    "StreamCommand",
    "StreamPlan",
    "StreamSettings",
]
