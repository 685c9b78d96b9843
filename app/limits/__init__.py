"""Rate limits per key and per tenant: requests/min, tokens/min, concurrent requests, tokens/day."""
