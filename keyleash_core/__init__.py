"""Keyleash core: shared services code for the vault and metering gRPC services."""
