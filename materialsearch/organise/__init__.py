"""Organising the library beyond search: zero-shot tags, the classifier behind them, duplicates (near-identical
photos and videos) and places (offline reverse geocoding)."""
