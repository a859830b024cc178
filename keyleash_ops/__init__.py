"""Operating Keyleash: the `keyleash` CLI, `keyleash up` (the whole system on one machine), the
demo, and the launcher of local Redis/PostgreSQL servers. Imports the services; nothing imports it
except tests and bench."""
