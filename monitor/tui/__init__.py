"""The agent's terminal UI (Textual)."""
