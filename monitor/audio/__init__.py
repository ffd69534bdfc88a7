"""Audio sources and acoustic measures."""
