"""A simulated card reader in process: the same shape as the terminal's `CardReader`.

`power_on() -> ATR`, `transmit(apdu) -> response`, `power_off()`; with no
card, or after the card was removed, they raise `CardAbsent` (a built-in
`ConnectionError`, so the terminal sees an `OSError` as from a real reader).
"""

from __future__ import annotations

from sim.card import Card
from sim.errors import CardAbsent, CardPulled

__all__ = ["SimReader"]


class SimReader:
    def __init__(self, card: Card | None = None, name: str | None = None) -> None:
        self.name = name or (f"sim:{card.name}" if card is not None else "sim")
        self._card = card
        self._powered = False

    @property
    def card(self) -> Card | None:
        return self._card

    @property
    def card_present(self) -> bool:
        return self._card is not None

    def insert_card(self, card: Card) -> None:
        """Put a card in (replacing any other); it needs `power_on` before it answers."""
        self._card = card
        self._powered = False

    def remove_card(self) -> Card | None:
        """Pull the card out; returns it (with its counters) so it can go back in later."""
        card, self._card = self._card, None
        self._powered = False
        if card is not None:
            card.power_off()
        return card

    def power_on(self) -> bytes:
        card = self._present()
        self._powered = True
        return card.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        card = self._present()
        if not self._powered:
            raise CardAbsent(f"{self.name}: the card was not powered on since it was inserted")
        try:
            return card.transmit(apdu)
        except CardPulled as pulled:
            self.remove_card()
            raise CardAbsent(f"{self.name}: card removed during the command ({pulled})") from None

    def power_off(self) -> None:
        if self._card is not None:
            self._card.power_off()
        self._powered = False

    def _present(self) -> Card:
        if self._card is None:
            raise CardAbsent(f"{self.name}: no card in the reader")
        return self._card
