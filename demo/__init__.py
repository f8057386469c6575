"""The embedded default: the demo world and `./run demo` (the top layer)."""
