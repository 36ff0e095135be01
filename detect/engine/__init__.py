"""The training engine's parts: optimiser and schedule, checkpoints, distributed helpers, the JSON-lines log."""
