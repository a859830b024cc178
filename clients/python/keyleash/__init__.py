"""Keyleash: generated gRPC code (keyleash.{type,vault,metering}.v1) and the client (keyleash.client)."""
