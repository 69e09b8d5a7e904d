"""The step benchmark behind `optzoo bench`: keras_optzoo against keras core,
optax and torch.optim, with a memory roofline measured in the same process.

Modules: `algorithms` (pairings, conventions, bytes moved per step),
`contenders` (runners, timing, correctness guard), `roofline`, `machine`,
`fit` (step time inside `model.fit`), `suite` (one run), `report` (markdown,
JSON, targets, cross-backend summary), `command` (the CLI).
"""
