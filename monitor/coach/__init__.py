"""Coaching: rules that turn the analyzer's measures into nudges for the agent."""
