"""The daemon: the wire protocol, the ZeroMQ front, the queue and the workers; it uses the
core and nothing of the tools."""
