"""Access control: who may call the API (users, API keys, sessions), rate limits, signed links.

See docs/security.md for the model.
"""
