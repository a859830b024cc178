# One image for both services; docker-compose.yml picks the entry point per container:
#   python -m vault_service      (gRPC :50051)
#   python -m metering_service   (gRPC :50052)
#   python -m keyleash_gateway   (HTTP :8080, the egress gateway)
#   python -m keyleash_usage_hooks   (HTTP :8085, the signed usage webhook receiver)
#   python -m keyleash_approvals (HTTP :8091, where one-click approval links land)
#   python -m keyleash_mcp --http   (HTTP :8070, MCP tools for agents; stdio without --http)
#   python -m keyleash_console   (HTTP :8090, the operator console; KEYLEASH_CONSOLE_LISTEN)
# Configuration comes only from KEYLEASH_* environment variables (see the README).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Pinned runtime dependencies first, in their own layer: rebuilt only when the lock changes.
# requirements-runtime.lock is the runtime subset of requirements.lock (no test or lint tools;
# scripts/runtime_lock.py makes it, tests/unit/test_container.py checks it).
COPY requirements-runtime.lock ./
RUN pip install -r requirements-runtime.lock

# The repo's Python sources. Copied by name so a local .venv, node_modules or state dir never
# ends up in the image.
COPY pyproject.toml README.md ./
COPY keyleash_core ./keyleash_core
COPY keyleash_ops ./keyleash_ops
COPY vault_service ./vault_service
COPY metering_service ./metering_service
COPY keyleash_gateway ./keyleash_gateway
COPY keyleash_usage_hooks ./keyleash_usage_hooks
COPY keyleash_approvals ./keyleash_approvals
COPY keyleash_mcp ./keyleash_mcp
COPY keyleash_console ./keyleash_console
COPY clients/python ./clients/python
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin keyleash \
    && install -d -o keyleash -g keyleash -m 0700 /var/lib/keyleash-gateway

USER keyleash
EXPOSE 50051 50052 8080 8085 8090 8091 8070
CMD ["python", "-m", "vault_service"]
