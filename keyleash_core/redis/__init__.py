"""Redis, shared by both services: the client and failure mapping (`scripts`), every key name
(`keyspace`), the Lua scripts (`lua/`), one script call (`script_call`) and auto-pipelining
(`script_pipeline`)."""
