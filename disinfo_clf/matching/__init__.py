"""Which catalogued cases a text repeats: case files, the case index and its search, and the
relevance flag ("no known narrative") that reads the same neighbours."""
