"""Keyleash for agent runtimes.

Generated gRPC code lives in keyleash.{type,vault,metering}.v1; the client is keyleash.client.
"""
