"""Deliveries: each outcome posted back to its integration, signed (Standard Webhooks), queued and
retried."""
