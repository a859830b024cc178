"""Alerts: signed outbound webhooks derived from the committed billing, key and audit streams.

domain.py (pure: event types, crossings, payloads, backoff), secrets.py (whsec_ secrets, sealed),
store.py (SQL), scanner.py (facts -> outbox), dispatcher.py (outbox -> HTTP), subscriptions.py
(the RPCs' use cases), worker.py (both loops in one task), __main__.py (run them alone).
"""
