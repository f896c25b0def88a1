"""The operator page (SPEC §11): `GET /` on the API port, server-rendered, no script.

view.py gathers what it shows from the engine, plan.py works out each position's exit plan,
chart.py draws the equity curve as inline SVG, render.py writes the HTML, routes.py serves it
behind the read token and the operator actions behind the admin token with a confirmation."""
