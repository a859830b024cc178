"""Generated from protos/keyleash/metering/*.proto by scripts/gen_protos.py; do not edit."""
