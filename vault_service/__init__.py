"""The Vault service: mints scoped, capped keys and decides every call made with them."""
