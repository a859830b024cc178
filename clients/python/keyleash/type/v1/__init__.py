"""Generated from protos/keyleash/type/v1/*.proto by scripts/gen_protos.py; do not edit."""
