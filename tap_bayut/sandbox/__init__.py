"""A local stand-in for the Bayut Pull API, for trying and testing the tap without a key.

It imports nothing from the tap: its own time and query parsing, so that one mistake
cannot hide in both.
"""
