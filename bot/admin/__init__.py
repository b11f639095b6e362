"""The admin layer: what admins ask of a running Concierge, as values ready to render.

`desk` parses `/concierge <subcommand>`, decides who is an admin and runs the command;
`reports` computes stats, gaps and owners from the question log, and `gaps` groups
unmet needs that are asked in other words; `suggest` learns needs to add from the log;
`digest` builds each owner team's digest and `schedule` says when it is due; `chart` draws
the stats as a PNG (with the optional matplotlib). Renderings live with their adapters (Block
Kit in `bot.slack`, text in `bot.cli`). It may import the live catalogue, the store,
matching and the catalogue, and never Slack or the command line.
"""
