"""`sollol-otel demo`: an embedded Redis where none runs, the dashboard, a simulated cluster."""
