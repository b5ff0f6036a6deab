"""BFF aggregation: aggregate specs compiled at load, and the executor that runs their parts."""
