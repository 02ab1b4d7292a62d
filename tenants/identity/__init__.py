"""The identity directory port: mirroring organisations, members and groups into an
identity backend (none for ``local``; a Keycloak realm for ``keycloak``)."""
