"""The deterministic core (SPEC §6.4): events in, state changes and effects out.

No awaits, no I/O, no clock reads: time arrives on the events and on `Core.advance(now)`.
The live shell (`daemon/shell.py`) and the replay loop (`daemon/replay.py`) drive the same
`Core` and carry out the effects it returns.
"""
