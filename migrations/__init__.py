"""Schema migrations (tortoise-orm native) and the SQL for row-level security."""
