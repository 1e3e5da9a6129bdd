"""Real services the tests start and stop themselves, one pytest plugin module each."""
