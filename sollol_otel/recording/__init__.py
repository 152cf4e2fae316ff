"""The router's side: the SOLLOL-compatible logger, the hand-off to background threads, the OTel
pipeline (providers, processors, lifecycle) and its exporters (Redis bridge, console, metrics)."""
