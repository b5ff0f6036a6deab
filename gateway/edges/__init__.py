"""The two edges: thin adapters that build a Call, run the pipeline and render the outcome."""
