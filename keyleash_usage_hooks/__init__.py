"""The usage webhook receiver: signed (Standard Webhooks) LLM usage events for calls that do not
pass through Keyleash, recorded by Metering before they are acknowledged."""
