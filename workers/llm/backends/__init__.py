"""Backends of the llm stage, one file each; each registers itself on import."""
