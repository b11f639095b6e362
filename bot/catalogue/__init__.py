"""The catalogue layer: what the service owners wrote, read once and kept as values.

`models` holds the frozen domain values (offerings, owners, the catalogue, decisions and
the problems found in files); `loader` turns a knowledge directory into a `Catalog`,
validating it against the JSON Schema in `schema/` and reporting every problem with its
file and line; `cache` keeps values that are slow to rebuild on disk, keyed by the bytes
they came from; `needs_edit` adds needs to a knowledge file's text in place (for suggested
needs), comments and order kept. This is the bottom layer: it imports nothing of
Concierge but `bot.errors` and `bot.settings`, and never the store, admin, Slack or the
command line.
"""
