"""Personal data: the map of where it lives (``datamap``), the per-member keys that make
audit events' personal fields erasable (``shredding``), and the erasure that reads both
(``erasure``)."""
