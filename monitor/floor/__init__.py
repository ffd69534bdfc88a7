"""The floor: the websocket hub, the agent's publisher and the team lead's dashboards."""
