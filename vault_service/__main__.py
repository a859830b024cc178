"""`python -m vault_service`: run the Vault service from KEYLEASH_* settings."""

from keyleash_core.main import run_service
from vault_service.server import start_from_env

if __name__ == "__main__":
    run_service("vault", start_from_env)
