"""Backends of the tts stage, one file each; each registers itself on import."""
