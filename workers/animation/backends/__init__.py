"""Backends of the animation stage, one file each; each registers itself on import."""
