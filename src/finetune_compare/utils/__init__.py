"""Small helpers with no domain knowledge: atomic I/O, logging, memory, devices."""
