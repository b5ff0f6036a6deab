"""The proto as the contract at the edge: google.api.field_behavior and buf.validate rules,
compiled per method at load and checked on the request bytes before any backend call."""
