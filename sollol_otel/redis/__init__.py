"""Everything that talks to Redis: clients and URLs, the one writer, the one stream reader."""
