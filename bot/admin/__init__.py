"""The admin layer: what admins ask of a running Concierge, as values ready to render.

`desk` parses `/concierge <subcommand>`, decides who is an admin and runs the command;
`reports` computes stats, gaps and owners from the question log, and `gaps` groups
unmet needs that are asked in other words. Renderings live with their adapters (Block
Kit in `bot.slack`, text in `bot.cli`). It may import the live catalogue, the store,
matching and the catalogue, and never Slack or the command line.
"""
