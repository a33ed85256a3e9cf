"""Reply stage: the conversation so far in, the reply text out."""
