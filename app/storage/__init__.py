"""Where every durable thing lives: the object store (local directory or S3-compatible) and
each process's local cache of it. No other module builds a storage path (see layout.py)."""
