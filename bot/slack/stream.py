"""The Slack ``OutputSink``: a run shown live in its thread by editing messages.

    sink = SlackStreamSink(client, channel, thread_ts, plan=validated, progress_actions=buttons)
    try:
        result = await orchestrator.execute(validated, context, sink)
    finally:
        await sink.aclose()
    sink.progress_ts, sink.message_timestamps  # for later updates (buttons)

The implementation lives in ``bot.slack.streaming``; this module is its public face.
"""

from __future__ import annotations

from bot.slack.streaming import (
    EditScheduler,
    OnPosted,
    ProgressActions,
    ProgressView,
    SlackStreamSink,
    StreamCommand,
    StreamPlan,
    StreamSettings,
)

__all__ = [
    "EditScheduler",
    "OnPosted",
    "ProgressActions",
    "ProgressView",
    "SlackStreamSink",
    "StreamCommand",
    "StreamPlan",
    "StreamSettings",
]
