"""Rate limiters: GCRA buckets in process memory or in Redis (one Lua call per decision)."""
