"""The acquirer link: ISO 8583 messages (UnionPay-style POS set) and the channel that carries them.

- `spec`: the packager, message dict <-> bytes (TPDU + header + ISO 8583), no I/O.
- `mac`: what the MAC covers, sealing requests, checking answers.
- `channel`: `HostLink` and `TcpHostLink` (2-byte length frames, TCP or TLS).
- `codes`: the code tables of the messages, one enum each (60.1 `TransactionCode`).
- `messages`: field builders (60, 61, 90, signed records) and one checked round trip.
- `signon`: sign-on (签到): working keys into the key store, batch number.
"""
