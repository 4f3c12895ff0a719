"""The engine room: targets, hooks, the batched engine and the method registry."""
