"""The public market stream: frame parsing (pure), the shared websocket client, URL rules.

Importing this package is light: ``websockets`` is imported only where a connection is made.
"""
