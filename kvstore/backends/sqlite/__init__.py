"""The ``sqlite`` backend: the embedded default of the command line, one database file."""
