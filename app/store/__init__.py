"""Redis for the gateway's shared state (keys, limits; later feedback): connection, timeouts, circuit breaker."""
