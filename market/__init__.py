"""What every room shares: the clock, the exchange calendar and its zone, and the value types
that cross the broker boundary (contracts, quotes, orders, fills).

A leaf: it imports nothing else of tradingd, so risk/, exits/, broker/ and daemon/ can all
depend on it without a cycle.
"""
