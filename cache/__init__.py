"""Content-hash keys and the Redis LRU caches (rendered video)."""
