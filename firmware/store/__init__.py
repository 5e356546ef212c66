"""Durable storage: crash-safe files (`atomic_file`), and the TinyDB tables
of the journal and the upload queue on top of them."""
