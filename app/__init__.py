"""The web face of Tenantry: settings, start-up, HTTP routes, CLI.

Starlette is imported only inside this package; the domain lives in ``tenants`` and
``policies``.
"""
