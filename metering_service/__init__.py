"""The Metering service: records what calls cost, settles holds, keeps the billing stream."""
