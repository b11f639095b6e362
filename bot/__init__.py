"""Concierge: match a plain-language need to the IT offering that fulfils it."""

__version__ = "0.1.0"
