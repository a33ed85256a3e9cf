"""Content-hash keys and the one cache class (``cache.store.Cache``), one namespace each for rendered
videos, transcripts, TTS phrases and FAQ answers, in the LRU cache Redis."""
