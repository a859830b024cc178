"""Real Redis and PostgreSQL server processes owned by the caller.

Used by `keyleash up` (persistent data dir, durable settings) and by the test suite (temp dir,
fsync off, servers killed/restarted for fault tests; a local Redis Cluster of several
redis-server processes for the cluster run). Linux-oriented (/proc, runuser). Everything
binds 127.0.0.1 on an ephemeral port: shared services on 6379/5432 must never be touched.

Running as root: PostgreSQL refuses to run as root, so initdb/pg_ctl run as the `postgres`
system user (or a `keyleash` system user created on demand) via `runuser`. That user must be
able to traverse every parent of the data dir. Parents under the temp dir (e.g. pytest's 0700
`/tmp/pytest-of-root`) get o+x added; anywhere else (e.g. `/root/...`) we raise rather than
loosen a home directory, so put the data dir somewhere reachable such as `/var/lib/keyleash`.

Lifetime: an atexit handler stops every server still running. A caller killed with SIGKILL (or
dying of an unhandled SIGTERM, which skips atexit) leaves its servers behind.
"""

from keyleash_ops.devstores.postgres import PostgresServer, start_postgres
from keyleash_ops.devstores.processes import DevStoreError, ManagedServer, find_free_port
from keyleash_ops.devstores.redis import RedisServer, start_redis
from keyleash_ops.devstores.redis_cluster import RedisClusterServer, start_redis_cluster

__all__ = [
    "DevStoreError",
    "ManagedServer",
    "PostgresServer",
    "RedisClusterServer",
    "RedisServer",
    "find_free_port",
    "start_postgres",
    "start_redis",
    "start_redis_cluster",
]
