"""Generated from protos/keyleash/type/*.proto by scripts/gen_protos.py; do not edit."""
