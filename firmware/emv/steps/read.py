"""Read step: application selection, GET PROCESSING OPTIONS, READ RECORD (Book 1 12, Book 3 10.1-10.2).

Leaves `ctx.selected` as soon as the card gave its application, then, once
the data passed its checks, `ctx.read` (PAN, PAN sequence number, the
terminal's parameters for the AID) and the card and terminal data objects.
A card with no application the terminal supports, or missing a mandatory
data object, ends the transaction (`Terminate`); malformed PAN, 5F34 or
track 2 raise CardDataError.
"""

from __future__ import annotations

from firmware.emv.application import read_application
from firmware.emv.carddata import pan_digits, pan_sequence_number, track2_equivalent_data
from firmware.emv.kernel_context import Ending, KernelContext, Terminate
from firmware.emv.kernel_outputs import ApplicationRead
from firmware.errors import SelectionError

__all__ = ["read_application_data"]


def read_application_data(ctx: KernelContext) -> Ending | None:
    services, data = ctx.services, ctx.data
    data.terminal = services.config.terminal_data()
    try:
        app = read_application(
            ctx.transport,
            services.terminal,
            transaction_data=data.terminal_side(),
            choose=services.choose,
            processable=lambda aid: services.config.application(aid) is not None,
        )
    except SelectionError as exc:
        raise Terminate(f"card not accepted: {exc}") from exc
    ctx.selected = app
    data.card = app.icc_data
    data.card.setdefault(0x84, app.selected.aid)
    if app.records.missing_mandatory:
        missing = ", ".join(f"{tag:X}" for tag in app.records.missing_mandatory)
        raise Terminate(f"card data missing mandatory objects {missing} (Book 3 7.2)")
    pan = pan_digits(app.records.tags[0x5A])
    psn = data.card.get(0x5F34)
    sequence_number = pan_sequence_number(psn) if psn is not None else None
    if 0x57 in data.card:
        track2_equivalent_data(data.card[0x57])
    params = services.config.application(app.selected.aid)
    assert params is not None  # selection leaves out an application without parameters
    data.terminal[0x9F09] = params.version
    data.terminal[0x9F1B] = params.floor_limit.to_bytes(4, "big")
    data.terminal[0x9F06] = params.aid
    ctx.read = ApplicationRead(app, pan, sequence_number, params)
    return None
