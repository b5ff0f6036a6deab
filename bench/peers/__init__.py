"""Other gateways run on the same protos and backend, for comparison (not our code)."""
