"""The Shared Signals receiver: security events (OpenID SSF 1.0, CAEP, RISC) pushed by the
organisation's transmitter as Security Event Tokens (RFC 8417, RFC 8935)."""
