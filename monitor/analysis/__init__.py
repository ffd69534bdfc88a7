"""Text analysis of transcribed utterances (hostility scoring)."""
