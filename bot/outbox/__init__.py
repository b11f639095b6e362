"""The outbox layer: requests made in Slack, from a submitted form to the owner's tools.

`forms` checks a form's answers; `intake` stores a request with everything it must deliver
(one transaction, before the person is told it went) and the owner's status changes;
`courier` is each worker's delivery loop (claims with leases in the shared database,
retries with backoff, a bounded time, failures reported); `webhooks` reads the configured
webhooks and signs and sends their POSTs. It may import the store, catalogue values and
settings, never admin, live, Slack or the command line: sending a Slack message is a
callable the composition root hands in, as `bot.store.takeover` gets its replay.
"""
