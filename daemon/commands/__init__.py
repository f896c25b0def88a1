"""One module per `tradingd` command; each exposes `register(subparsers)`."""
