"""Thin command-line front ends over the domain packages.

    pos-emv   firmware.cli.emv    technician's card tool: read, txn
    pos-keys  firmware.cli.keys   key management: provision, load-tmk, load-dukpt, list, public-key

Only this package parses arguments and writes to stdout / stderr; the domain
packages (`firmware/emv`, `firmware/keys`, `firmware/host`, `firmware/store`)
return plain data and raise the project's errors. Each tool's `main(argv, ...)`
builds its argparse parser in a function from a static list of subcommands
(no registry filled at import time) and receives the outside world as
parameters: the reader opener and the online factory come from the
composition root `firmware/__main__.py`, the only place that picks real or
simulated parts; the clock, randomness and the streams have the real ones
as defaults and are pinned by tests.

Conventions (`firmware.cli.common`):
- success prints its result (JSON for pos-emv) on stdout and exits 0;
- every failure is ONE line on stderr, `PROG: message`, never a traceback,
  and a non-zero exit code;
- pos-emv sorts failures by what the technician should look at:
  2 no reader or no card (or the card left), 3 no application both the card
  and the terminal support, 4 the card answered something the terminal must
  refuse (or the transaction was terminated), 5 the configuration is missing
  or wrong, 64 usage (sysexits EX_USAGE: a bad option or amount);
- pos-keys keeps its own two: 1 the operation was refused (any firmware
  error), 2 usage.
"""
