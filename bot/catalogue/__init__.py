"""The catalogue layer: what the service owners wrote, read once and kept as values.

`models` holds the frozen domain values (offerings, owners, the catalogue, decisions and
the problems found in files); `loader` turns a knowledge directory into a `Catalog`,
validating it against the JSON Schema in `schema/` and reporting every problem with its
file and line; `cache` keeps values that are slow to rebuild on disk, keyed by the bytes
they came from; `needs_edit` adds needs to a knowledge file's text in place (for suggested
needs), comments and order kept; the sample catalogue is installed as `sample` (the
checkout's `knowledge/`, mapped in when the wheel is built). This is the bottom layer: it
imports nothing of Concierge but `bot.errors`, `bot.settings` and `bot.wording`, and never
the store, admin, Slack or the command line.
"""
