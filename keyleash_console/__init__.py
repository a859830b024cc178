"""The operator console: server-rendered pages over the services' gRPC APIs (issue #18)."""
