"""Pulse: visitors' reactions as a live, k-anonymous picture of the market's mood."""
