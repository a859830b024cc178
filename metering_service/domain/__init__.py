"""Pure metering logic: events, kinds, digests, pricing and settlement plans. No I/O."""
