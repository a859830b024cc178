"""Generated from protos/keyleash/vault/*.proto by scripts/gen_protos.py; do not edit."""
