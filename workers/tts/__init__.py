"""Speech synthesis stage: text in, speech audio out."""
