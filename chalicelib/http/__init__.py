"""The bridge's outbound HTTP: one kept-alive client with a total deadline on every request."""
