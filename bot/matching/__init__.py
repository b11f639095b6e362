"""The matching layer: from a question to a `Decision` (answer, clarify or none) with its why.

`text` and `german` read a question (folding, stems, a word-by-word German reading);
`lexical` scores it by words and `semantic` by sentence embeddings (`encoder` runs the
model in NumPy, `embeddings` loads it and caches vectors); `matcher` joins both signals
and decides with the lines in `thresholds`; `engine` builds a matcher in the configured
mode; `whatif` rebuilds a matcher with needs added; `evaluate` runs golden questions
through it. It imports the catalogue layer,
`bot.errors` and `bot.settings`, and never the store, admin, Slack or the command line, so
that a decision depends on the catalogue and the question alone.
"""
