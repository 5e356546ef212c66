"""Durable storage: crash-safe files (`atomic_file`), a crash-safe TinyDB
storage (`storage`), and named tables of JSON documents over it (`tables`),
the one way the layers above reach TinyDB. What the store refuses to keep:
`sensitive`."""
