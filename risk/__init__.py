"""Sizing, gate, correlation, scale-in and account breakers: pure functions over frozen dataclasses.

No I/O, no clock reads: the engine passes everything in (`now` included) and stores what comes out.
Entry points: `risk.sizing.evaluate`, `risk.scale_in.evaluate_scale_in`, `risk.signal.parse_signal`,
`risk.breakers.evaluate_breaker`.
"""
