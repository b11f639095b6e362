"""The Slack layer: the composition root and everything that speaks Slack's formats.

`app` builds the Bolt app from the environment and wires the handlers (`handlers/` at
the repository's top) to the core; `gate` checks size, signature and shape of a request
before Bolt parses it; `server` runs it over HTTP (gunicorn, whose master loads the
matcher once for all workers, and whose workers read requests whole before a thread
answers them: `worker`) or Socket Mode, and `serve` is its `concierge serve` command;
`buttons` ties each card's buttons to its question and asker;
`operations` reads the operations settings; `replies` and `admin_replies` build the Block
Kit messages and views; `charts` posts the stats chart to an admin's DM; `digests` sends
the owners' digests once per period; `history` finds one of Concierge's own messages in a
conversation again (for takeovers of events and digests). Only this layer and `handlers/`
import `slack_bolt` or `slack_sdk`; it may import every layer below it, and never the
command line.
"""
