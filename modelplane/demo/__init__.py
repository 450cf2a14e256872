"""`modelplane demo`: the whole routing path on one machine, with no cluster and no API key."""
