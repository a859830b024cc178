"""Generated from protos/keyleash/metering/v1/*.proto by scripts/gen_protos.py; do not edit."""
