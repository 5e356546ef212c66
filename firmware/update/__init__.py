"""Signed firmware images and the A/B slots they are installed into (technician flashing).

manifest.py    the signed manifest: version, target, every file's size and SHA-256; refusal codes
image.py       the image file: envelope (magic, manifest, Ed25519 signature, payload) and its tar payload
trust.py       the terminal's trusted image keys, signing keys and the development key
verify.py      every check an image passes before a byte of it is installed
slots.py       A/B slots under a root: install, boot counting, mark-good, rollback, anti-rollback
migrations.py  numbered, run-once migrations of the data directory
build.py       building an image from the source tree (build machine side)
"""
