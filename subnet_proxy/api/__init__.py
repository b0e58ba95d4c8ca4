"""The HTTP API's wire models (``schemas``): a leaf on pydantic, the protocol and the task model, so the
client, the CLI and the miner use the server's models without loading the server."""
