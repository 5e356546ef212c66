"""The kiosk's screens (pygame): they talk to `firmware.txn` only, through the worker thread.

Modules:
    keys     the keypad's `Key` enum; PC keyboard, Linux input codes through SDL
    entry    fields the keypad types into: amounts in fen, digits, date and time, multi-tap, secrets
    jobs     card and host work on one worker thread, messages back to the loop
    base     Screen, View, Transition, Context (service, card slot, language, receipts hook)
    text     the string catalogue, 中文 and English
    render   cached fonts, the layout of a screen size, the painter of a View
    common   entry, choice, message, working and result screens; errors explained
    idle     the idle screen: merchant, terminal, clock, host state, what waits
    menu     the main menu
    sale     sale: amount, card, PIN, result
    orders   find an order (number, date, amount, last four), its detail and history
    reverse  cancel order, refund (card or cash), adjust: evidence, terms, supervisor
    status   request status and retry now (drain)
    settle   settlement
"""
