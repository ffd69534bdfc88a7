"""callmon: a real-time call monitor that transcribes both sides of a call and coaches the agent."""

__version__ = "0.1.0"
