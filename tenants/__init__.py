"""The organisation's domain: organisations, units, groups, members and their lifecycle,
products, API tokens and the audit log.

Rules are plain Python (``rules.py``, ``lifecycle.py``, ``chain.py``); the ORM lives in
``models.py``; writes go through ``service.py`` functions that run in the caller's tenant
transaction and record one audit event each.
"""
