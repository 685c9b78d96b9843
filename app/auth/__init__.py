"""API keys: generation, keyed hashes, stores (Redis, memory), verification and the ASGI middleware."""
