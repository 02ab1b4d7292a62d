"""Privacy requests: members' inquiries and data-subject requests, routed to the
organisation's privacy queue with a legal deadline, and their fulfilment (export, erasure)."""
