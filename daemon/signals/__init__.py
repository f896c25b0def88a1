"""Where signals come from besides the HTTP API: a JSONL file replayed at its times, and
the reference (demonstration) source computed from the underlying's bars."""
