"""Keys, MACs, PIN blocks, DUKPT, record signing and passwords.

Keys live in memory only as long as an operation needs them; at rest they are
wrapped under the device key (see `store`). Nothing here logs or prints key
bytes, PINs or PANs: keys are shown only as their check value (KCV).
"""
