"""`python -m services --users-port A --orders-port B --notifications-port C`: the demo trio."""

from __future__ import annotations

from services.cli import main
from services.server import DEMO

main(DEMO)
