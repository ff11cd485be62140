"""OKX's business WebSocket: the grid channels as reliable async streams.

- `_urls`: which WebSocket URL a client uses.
- `_protocol`: the frames, decoded in one place, and the two grid channels.
- `_policy`: backoff, the operation budget, the heartbeat, batching, staleness.
- `_connection`: one connection: connect, log in, subscribe, read, ping.
- `_inbox`: what waits for the reader: the newest version of each grid; failures.
- `_stream`: the public stream and the tasks behind it: reconnects and resyncs.
- `_watch`: what a `GridClient` builds its streams with.
"""

from ._inbox import WatchFailure, WatchStats
from ._stream import WatchStream
from ._watch import Streams

__all__ = ["Streams", "WatchFailure", "WatchStats", "WatchStream"]
