"""`python -m metering_service`: run the Metering service from KEYLEASH_* settings."""

from keyleash_core.main import run_service
from metering_service.server import start_from_env

if __name__ == "__main__":
    run_service("metering", start_from_env)
