"""Log record exporters for routing events: to Redis, and to the console."""
