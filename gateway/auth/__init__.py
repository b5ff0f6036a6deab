"""Authentication: JWTs over an async JWKS cache, API keys, and the build of the auth policies."""
