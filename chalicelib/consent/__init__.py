"""Consent: when and how often a phone may ring, and who may not be called."""
