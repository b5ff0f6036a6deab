"""Hand-written servers the gateway is measured against: bare aiohttp and an aiohttp façade."""
