"""Privacy-setting policies: the setting catalogue, rules, member choices and their pure
resolution. Imports nothing from ``tenants`` or ``app``."""
