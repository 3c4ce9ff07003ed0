"""The local API emulator: a real HTTP server speaking the DashScope and APIYI contracts."""
