"""The store layer: Concierge's own database, shared by every worker process and host.

`database` (`Store`) is the one gateway to it, on SQLite by default or PostgreSQL via
`DATABASE_URL`; `tables` describes the rows and `migrations/` (run by `migrate`) creates
and changes them; `recorder` writes questions, choices and feedback best-effort, so a
database that is down never stops an answer; `takeover` answers the events a dead worker
acknowledged but never answered; `digests` claims each digest period for one worker and
records each message of it. It may import the catalogue and matching values it
records, and never admin, Slack or the command line.
"""
