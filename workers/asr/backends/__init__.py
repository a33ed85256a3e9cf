"""Backends of the asr stage, one file each; each registers itself on import."""
