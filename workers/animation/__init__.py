"""Animation stage: portrait and speech in, talking-head MP4 out."""
