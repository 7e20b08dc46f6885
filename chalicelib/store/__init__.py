"""The only package that speaks DynamoDB: CallStore's operations; item shapes stay inside."""

from chalicelib.store.call_store import CallStore, RecordExists, StoreOutcome

__all__ = ["CallStore", "RecordExists", "StoreOutcome"]
