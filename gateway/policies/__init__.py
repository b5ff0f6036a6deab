"""Policies: one module each, all of the shape `async (call, call_next) -> Reply`."""
