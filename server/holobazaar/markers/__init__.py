"""Printable QR markers: one card per stall display, A4 sheets of cards with cut marks,
and an entrance poster for the market page."""
