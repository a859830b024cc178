"""Generated from protos/keyleash/vault/v1/*.proto by scripts/gen_protos.py; do not edit."""
