"""Speech recognition stage: audio in, transcript and language out."""
