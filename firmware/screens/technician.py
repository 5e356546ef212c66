"""The technician menu, behind the technician's password.

    main menu 9 -> the technician's password (masked; wrong ones counted, the lock-out shown;
                   a factory password leads to a new one, typed twice)
      1 keys             name, kind, version and KCV of each key (never its bytes); F1 loads the
                         TMK from a TR-31 block file and a KBPK file (chosen from what lies under
                         the media directory, or typed), then signs on again; F2 signs on
      2 parameters       host profile, identity and each operation's terms, read-only (▲▼)
      3 reader test      the card in the slot read as `pos-emv read` does: AID, label, masked
                         PAN, expiry, the APDUs and their time
      4 export logs      queue view, journal (masked) and the log's last lines to a directory
                         on the USB stick
      5 firmware update  an image file, verified (or its one-line refusal), confirmed, installed
                         into the other slot; then the terminal must restart
      6 change password

The work is `firmware.txn.technician.Technician` (`ctx.technician`, set by
the composition root), always on the worker thread. A flow's steps replace
one another where it stands, so CANCEL on any step goes back to where the
flow began (the keys list, reloaded, or the technician menu).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware.errors import ImageRefusedError
from firmware.screens.base import Context, Line, Screen, Style, Transition, View
from firmware.screens.common import ChoiceScreen, EntryScreen, MessageScreen, WorkingScreen, explain
from firmware.screens.entry import TAP_LETTERS, MultiTapField, SecretField, TapMode
from firmware.screens.jobs import Done, Failed, Job, JobDone
from firmware.screens.keys import Key
from firmware.txn.model import ReverseOperation
from firmware.txn.rules import terms_lines
from firmware.txn.technician import (
    CardRead,
    ChangeOutcome,
    Exported,
    ImageCheck,
    InstallResult,
    KeyRow,
    LoginOutcome,
    LoginResult,
    Technician,
    TmkLoaded,
)

__all__ = [
    "PATH_LETTERS",
    "FlowMessage",
    "KeysScreen",
    "PathField",
    "PickScreen",
    "ReaderTestScreen",
    "TechnicianMenu",
    "technician_entry",
]

MIN_PASSWORD: Final = 12  # firmware.keys.passwords.MIN_PASSWORD_LENGTH: a technician's, 12 or more
MAX_PASSWORD: Final = 16
PATH_LETTERS: Final = {**TAP_LETTERS, "1": "/._-"}

Back = Callable[[], Transition]


@dataclass
class PathField(MultiTapField):
    """A path by multi-tap: lower case first, and key 1 gives / . _ -."""

    mode: str = TapMode.LOWER

    def _pending_char(self) -> str:
        assert self._pending_key is not None
        letters = PATH_LETTERS[self._pending_key]
        char = letters[self._pending_index % len(letters)]
        return char.lower() if self.mode == TapMode.LOWER else char


class FlowMessage(MessageScreen):
    """A step of a flow: ENTER goes on, CANCEL goes `back` (where the flow began)."""

    def __init__(
        self,
        ctx: Context,
        title: str,
        body: Sequence[Line],
        *,
        back: Back = Transition.pop,
        on_enter: Callable[[], Transition] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(ctx, title, body, on_enter or back, hint=hint)
        self.back = back

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            return self.back()
        return super().handle(key)


def _tech(ctx: Context) -> Technician:
    assert ctx.technician is not None
    return ctx.technician


def _failed(ctx: Context, title: str, back: Back) -> Callable[[BaseException], Transition]:
    def failed(error: BaseException) -> Transition:
        return Transition.replace(FlowMessage(ctx, title, explain(ctx, error), back=back))

    return failed


# ----- log in and password ---------------------------------------------------------------------


def technician_entry(ctx: Context) -> Transition:
    """The main menu's entry: the password first (or why there is no technician menu here)."""
    if ctx.technician is None:
        return Transition.push(
            FlowMessage(ctx, ctx.t("tech.title"), (Line(ctx.t("tech.unavailable"), Style.BAD),))
        )
    return Transition.push(_login(ctx))


def _password(screen: EntryScreen) -> str:
    return screen.field.digits if isinstance(screen.field, SecretField) else ""


def _login(ctx: Context) -> EntryScreen:
    tech = _tech(ctx)

    def enter(screen: EntryScreen) -> Transition:
        password = _password(screen)
        if not password:
            screen.error = (Line(ctx.t("error.required"), Style.BAD),)
            return Transition.stay()

        def then(result: LoginResult | None) -> Transition:
            if isinstance(screen.field, SecretField):
                screen.field.digits = ""
            if result is None:
                screen.error = (Line(ctx.t("tech.no_password"), Style.BAD),)
            elif result.outcome is LoginOutcome.ACCEPTED:
                return Transition.replace(TechnicianMenu(ctx))
            elif result.outcome is LoginOutcome.MUST_CHANGE:
                return Transition.replace(
                    _new_password(ctx, password, lambda: Transition.replace(TechnicianMenu(ctx)), first=True)
                )
            elif result.outcome is LoginOutcome.LOCKED:
                seconds = math.ceil(result.locked_for)
                screen.error = (Line(ctx.t("tech.locked", seconds=seconds), Style.BAD),)
            else:
                screen.error = (Line(ctx.t("tech.wrong", failures=result.failures), Style.BAD),)
            return Transition.stay()

        return screen.lookup(lambda job: tech.login(password), then)

    return EntryScreen(
        ctx, ctx.t("tech.login.title"), ctx.t("tech.login.prompt"), SecretField(MAX_PASSWORD), enter
    )


def _new_password(
    ctx: Context, old: str, after: Back, *, first: bool = False, error: tuple[Line, ...] = ()
) -> EntryScreen:
    """The new password, then the same again, then the store's change (checking `old` once more)."""
    tech = _tech(ctx)
    title = ctx.t("tech.password.title")

    def again(screen: EntryScreen, new: str) -> Transition:
        typed = _password(screen)
        if typed != new:
            mismatch = (Line(ctx.t("tech.password.mismatch"), Style.BAD),)
            return Transition.replace(_new_password(ctx, old, after, first=first, error=mismatch))

        def then(outcome: ChangeOutcome) -> Transition:
            if outcome is ChangeOutcome.CHANGED:
                body = (Line(ctx.t("tech.password.changed"), Style.GOOD),)
                return Transition.replace(FlowMessage(ctx, title, body, back=after))
            if outcome is ChangeOutcome.SAME_AS_OLD:
                same = (Line(ctx.t("tech.password.same"), Style.BAD),)
                return Transition.replace(_new_password(ctx, old, after, first=first, error=same))
            if outcome is ChangeOutcome.TOO_SHORT:
                body = (Line(ctx.t("error.password_short", length=MIN_PASSWORD), Style.BAD),)
            else:
                key = "tech.password.locked" if outcome is ChangeOutcome.LOCKED else "tech.password.wrong"
                body = (Line(ctx.t(key), Style.BAD),)
            return Transition.replace(FlowMessage(ctx, title, body))

        return screen.lookup(lambda job: tech.change_password(old, new), then)

    def enter(screen: EntryScreen) -> Transition:
        new = _password(screen)
        if len(new) < MIN_PASSWORD:
            screen.error = (Line(ctx.t("error.password_short", length=MIN_PASSWORD), Style.BAD),)
            return Transition.stay()
        return Transition.replace(
            EntryScreen(
                ctx,
                title,
                ctx.t("tech.password.again"),
                SecretField(MAX_PASSWORD),
                lambda screen: again(screen, new),
            )
        )

    above = (Line(ctx.t("tech.must_change"), Style.WARN),) if first else ()
    screen = EntryScreen(
        ctx,
        title,
        ctx.t("tech.password.new", length=MIN_PASSWORD),
        SecretField(MAX_PASSWORD),
        enter,
        above=above,
    )
    screen.error = error
    return screen


def _change_password(ctx: Context) -> Transition:
    def enter(screen: EntryScreen) -> Transition:
        old = _password(screen)
        if not old:
            screen.error = (Line(ctx.t("error.required"), Style.BAD),)
            return Transition.stay()
        return Transition.replace(_new_password(ctx, old, Transition.pop))

    return Transition.push(
        EntryScreen(
            ctx,
            ctx.t("tech.password.title"),
            ctx.t("tech.password.old"),
            SecretField(MAX_PASSWORD),
            enter,
        )
    )


# ----- the menu --------------------------------------------------------------------------------


class TechnicianMenu(ChoiceScreen):
    def __init__(self, ctx: Context) -> None:
        entries: list[tuple[str, Callable[[], Transition]]] = [
            (ctx.t("tech.keys"), lambda: Transition.push(KeysScreen(ctx))),
            (ctx.t("tech.parameters"), lambda: Transition.push(parameters_screen(ctx))),
            (ctx.t("tech.reader"), lambda: Transition.push(ReaderTestScreen(ctx))),
            (ctx.t("tech.export"), lambda: Transition.push(_export_pick(ctx))),
            (ctx.t("tech.firmware"), lambda: Transition.push(_image_pick(ctx))),
            (ctx.t("tech.change_password"), lambda: _change_password(ctx)),
        ]
        super().__init__(ctx, ctx.t("tech.title"), entries)


# ----- picking a file or a directory under the media directory ----------------------------------


class PickScreen(ChoiceScreen):
    """Paths found under the media directory (on the worker), then "type a path"; CANCEL goes `back`."""

    def __init__(
        self,
        ctx: Context,
        title: str,
        find: Callable[[Technician], list[Path]],
        chosen: Callable[[Path], Transition],
        *,
        typed: Callable[[Technician, str], Path],
        empty: str,
        above: Sequence[Line] = (),
        back: Back = Transition.pop,
    ) -> None:
        super().__init__(ctx, title, [], above=above)
        self.chosen, self.typed, self.empty, self.back = chosen, typed, empty, back
        self.busy = True
        self._entry: EntryScreen | None = None  # the typed path, checked on the worker for this screen
        self._typed_job: Job | None = None
        tech = _tech(ctx)
        ctx.run(self, lambda job: find(tech), "local")

    def _label(self, path: Path) -> str:
        media = _tech(self.ctx).media_dir
        for base in (media, media.resolve()):
            if path.is_relative_to(base):
                return str(path.relative_to(base)) or "."
        return str(path)

    def on_job(self, done: JobDone) -> Transition:
        if done.job is self._typed_job and self._entry is not None:
            entry, self._typed_job = self._entry, None
            entry.busy = False
            if isinstance(done.outcome, Failed):
                entry.error = explain(self.ctx, done.outcome.error)
                return Transition.stay()
            return self.chosen(done.outcome.value)  # in this screen's place: the entry above it goes
        self.busy = False
        found: list[Path] = []
        if isinstance(done.outcome, Failed):
            self.above = (*self.above, *explain(self.ctx, done.outcome.error))
        else:
            found = list(done.outcome.value)
        self.choices = [(self._label(path), self._choose(path)) for path in found]
        self.choices.append((self.t("tech.type_path"), self._type))
        if not found:
            self.above = (*self.above, Line(self.empty, Style.DIM))
        return Transition.stay()

    def _choose(self, path: Path) -> Callable[[], Transition]:
        return lambda: self.chosen(path)

    def _type(self) -> Transition:
        ctx, tech = self.ctx, _tech(self.ctx)

        def enter(screen: EntryScreen) -> Transition:
            text = screen.field.finish() if isinstance(screen.field, MultiTapField) else ""
            screen.busy, self._entry = True, screen
            self._typed_job = ctx.run(self, lambda job: self.typed(tech, text), "local")
            return Transition.stay()

        prompt = ctx.t("tech.path.prompt", media=tech.media_dir)
        entry = EntryScreen(
            ctx, ctx.t("tech.path.title"), prompt, PathField(120), enter, hint=ctx.t("hint.tech_path")
        )
        return Transition.push(entry)

    def view(self) -> View:
        if self.busy:
            return View(
                self.title,
                (*self.above, Line(self.t("working.looking_up"), Style.DIM)),
                self.t("hint.choose"),
            )
        return super().view()

    def handle(self, key: Key) -> Transition:
        if self.busy:
            return Transition.stay()
        if key is Key.CANCEL:
            return self.back()
        return super().handle(key)


def _files(suffix: str) -> Callable[[Technician], list[Path]]:
    return lambda tech: tech.files(suffix)


def _a_file(tech: Technician, text: str) -> Path:
    return tech.media_file(text)


def _a_directory(tech: Technician, text: str) -> Path:
    return tech.media_directory(text)


# ----- keys -------------------------------------------------------------------------------------


def _key_lines(ctx: Context, rows: Sequence[KeyRow]) -> list[Line]:
    lines: list[Line] = []
    for row in rows:
        if row.name == "DUKPT":
            lines.append(Line(f"DUKPT  {row.kind}  KCV {row.kcv}"))
        else:
            lines.append(Line(f"{row.name}  {row.kind}  v{row.version}  KCV {row.kcv}"))
        if row.block_version:
            lines.append(Line(ctx.t("tech.keys.block", block=row.block_version), Style.DIM))
    return lines or [Line(ctx.t("tech.keys.none"), Style.DIM)]


class KeysScreen(Screen):
    """The keys by name, kind, version and KCV; F1 (or ENTER) loads the TMK, F2 signs on."""

    def __init__(self, ctx: Context, above: Sequence[Line] = ()) -> None:
        super().__init__(ctx)
        self.above = tuple(above)
        self.rows: list[KeyRow] | None = None
        self.error: tuple[Line, ...] = ()
        self.scroll = 0
        self.busy = True
        tech = _tech(ctx)
        ctx.run(self, lambda job: tech.keys(), "local")

    def on_job(self, done: JobDone) -> Transition:
        self.busy = False
        if isinstance(done.outcome, Done):
            self.rows = list(done.outcome.value)
        elif isinstance(done.outcome, Failed):
            self.error = explain(self.ctx, done.outcome.error)
        return Transition.stay()

    def body(self) -> list[Line]:
        lines = [*self.above, *self.error]
        if self.rows is None:
            return [*lines, Line(self.t("working.looking_up"), Style.DIM)] if not self.error else lines
        return [*lines, *_key_lines(self.ctx, self.rows)]

    def view(self) -> View:
        softkeys = ((Key.F1, self.t("soft.tech_load")), (Key.F2, self.t("soft.tech_signon")))
        return View(
            self.t("tech.keys.title"),
            tuple(self.body()),
            self.t("hint.tech_keys"),
            self.scroll,
            softkeys=softkeys,
        )

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            return Transition.pop()
        if self.busy:
            return Transition.stay()
        if key is Key.UP:
            self.scroll = max(0, self.scroll - 1)
        elif key is Key.DOWN:
            self.scroll = min(max(0, len(self.body()) - 1), self.scroll + 1)
        elif key in (Key.F1, Key.ENTER):
            return Transition.replace(_block_pick(self.ctx))
        elif key is Key.F2:
            return Transition.replace(_sign_on(self.ctx))
        return Transition.stay()


def _keys_again(ctx: Context, above: Sequence[Line] = ()) -> Back:
    return lambda: Transition.replace(KeysScreen(ctx, above))


def _block_pick(ctx: Context) -> PickScreen:
    tech = _tech(ctx)
    return PickScreen(
        ctx,
        ctx.t("tech.block.title"),
        _files(".tr31"),
        lambda block: Transition.replace(_kbpk_pick(ctx, block)),
        typed=_a_file,
        empty=ctx.t("tech.no_files", pattern="*.tr31", media=tech.media_dir),
        back=_keys_again(ctx),
    )


def _kbpk_pick(ctx: Context, block: Path) -> PickScreen:
    tech = _tech(ctx)

    def find(tech: Technician) -> list[Path]:  # the block's own directory first
        found = tech.files(".hex")
        return sorted(found, key=lambda path: (path.parent != block.parent, str(path)))

    return PickScreen(
        ctx,
        ctx.t("tech.kbpk.title"),
        find,
        lambda kbpk: Transition.replace(_tmk_confirm(ctx, block, kbpk)),
        typed=_a_file,
        empty=ctx.t("tech.no_files", pattern="*.hex", media=tech.media_dir),
        above=(Line(ctx.t("tech.tmk.block", path=block), Style.DIM),),
        back=_keys_again(ctx),
    )


def _tmk_confirm(ctx: Context, block: Path, kbpk: Path) -> FlowMessage:
    title = ctx.t("tech.tmk.confirm")
    body = (Line(ctx.t("tech.tmk.block", path=block)), Line(ctx.t("tech.tmk.kbpk", path=kbpk)))
    tech = _tech(ctx)

    def load() -> Transition:
        return Transition.replace(
            WorkingScreen(
                ctx,
                title,
                lambda job: tech.load_tmk(block, kbpk),
                lambda loaded: Transition.replace(_tmk_loaded(ctx, loaded)),
                label="local",
                failed=_failed(ctx, title, _keys_again(ctx)),
            )
        )

    return FlowMessage(ctx, title, body, back=_keys_again(ctx), on_enter=load)


def _tmk_loaded(ctx: Context, loaded: TmkLoaded) -> FlowMessage:
    body = (
        Line(ctx.t("tech.tmk.loaded"), Style.GOOD),
        Line(ctx.t("tech.tmk.detail", version=loaded.version, kcv=loaded.kcv)),
        Line(
            ctx.t("tech.tmk.key_version", block_id=loaded.block_version_id, block=loaded.key_version),
            Style.DIM,
        ),
        Line(ctx.t("tech.tmk.signon"), Style.WARN),
    )
    return FlowMessage(
        ctx,
        ctx.t("tech.tmk.confirm"),
        body,
        back=_keys_again(ctx, body[:2]),
        on_enter=lambda: Transition.replace(_sign_on(ctx)),
        hint=ctx.t("hint.tech_signon"),
    )


def _sign_on(ctx: Context) -> WorkingScreen:
    title = ctx.t("menu.signon")

    def done(approved: bool) -> Transition:
        line = Line(ctx.t("signon.ok"), Style.GOOD) if approved else Line(ctx.t("signon.refused"), Style.BAD)
        back = _keys_again(ctx, (line,))
        return Transition.replace(FlowMessage(ctx, title, (line,), back=back))

    return WorkingScreen(
        ctx,
        title,
        lambda job: ctx.service.sign_on().approved,
        done,
        failed=_failed(ctx, title, _keys_again(ctx)),
    )


# ----- parameters and terms ---------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value:g}"


def parameters_screen(ctx: Context) -> FlowMessage:
    """Host profile, identity and the terms of each operation (read-only; configuration, not the books)."""
    service = ctx.service
    profile, identity, terms = service.profile, service.ctx.identity, service.ctx.terms
    t = ctx.t
    lines = [
        Line(t("tech.params.host"), Style.DIM),
        Line(t("tech.params.mac", mac=profile.mac_profile.value)),
        Line(t("tech.params.scheme", scheme=profile.key_scheme)),
        Line(
            t(
                "tech.params.timeouts",
                connect=_seconds(profile.connect_timeout),
                answer=_seconds(profile.answer_timeout),
            )
        ),
        Line(
            t(
                "tech.params.retries",
                attempts=profile.max_attempts,
                backoff="/".join(_seconds(b) for b in profile.backoff),
            )
        ),
        Line(t("tech.params.identity"), Style.DIM),
        Line(t("tech.params.terminal", tid=identity.terminal_id)),
        Line(t("tech.params.merchant", mid=identity.merchant_id)),
        Line(t("tech.params.name", name=ctx.info.merchant_name)),
        Line(t("tech.params.terms", reference=terms.reference, currency=terms.currency), Style.DIM),
    ]
    for operation in ReverseOperation:
        lines.append(Line(t(f"operation.{operation.value}"), Style.SELECTED))
        lines.extend(Line(text) for text in terms_lines(operation, terms, ctx.language))
    return FlowMessage(ctx, t("tech.params.title"), lines, hint=t("hint.tech_scroll"))


# ----- reader test -------------------------------------------------------------------------------


class ReaderTestScreen(Screen):
    """Reads the card in the slot as `pos-emv read` does, as soon as it is there (ENTER reads again)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.result: CardRead | None = None
        self.error: tuple[Line, ...] = ()
        self.job: Job | None = None
        self.scroll = 0
        if ctx.card.present():
            self._read()

    def _read(self) -> None:
        tech, card = _tech(self.ctx), self.ctx.card
        self.result, self.error, self.scroll = None, (), 0
        self.busy = True  # a script's next key and SHOT wait for the read
        self.job = self.ctx.run(
            self, lambda job: tech.read_card(card.reader(job.aborted)), "reader", abortable=True
        )

    def on_card(self, present: bool) -> Transition:
        if present and self.job is None:
            self._read()
        return Transition.stay()

    def on_job(self, done: JobDone) -> Transition:
        self.job, self.busy = None, False
        if isinstance(done.outcome, Done):
            self.result = done.outcome.value
        elif isinstance(done.outcome, Failed):
            self.error = explain(self.ctx, done.outcome.error)
        return Transition.stay()

    def body(self) -> list[Line]:
        t = self.t
        if self.job is not None:
            return [Line(t("tech.reader.reading"))]
        lines = list(self.error)
        r = self.result
        if r is not None:
            lines += [
                Line(t("tech.reader.aid", aid=r.aid), Style.BODY),
                Line(t("tech.reader.label", label=r.label or "-")),
                Line(t("tech.reader.pan", pan=r.pan or "-")),
                Line(t("tech.reader.expiry", expiry=r.expiry or "-")),
                Line(t("tech.reader.apdus", apdus=r.apdus, ms=f"{r.apdu_ms:.1f}"), Style.GOOD),
                Line(t("tech.reader.method", method=r.method or "-"), Style.DIM),
                Line(t("tech.reader.reader", reader=r.reader), Style.DIM),
            ]
        elif not self.error:
            key = "tech.reader.ready" if self.ctx.card.present() else "tech.reader.insert"
            lines.append(Line(t(key)))
        return lines

    def view(self) -> View:
        return View(self.t("tech.reader.title"), tuple(self.body()), self.t("hint.tech_read"), self.scroll)

    def handle(self, key: Key) -> Transition:
        if key is Key.CANCEL:
            if self.job is not None:
                self.job.abort()
            return Transition.pop()
        if self.job is not None:
            return Transition.stay()
        if key is Key.ENTER and self.ctx.card.present():
            self._read()
        elif key is Key.UP:
            self.scroll = max(0, self.scroll - 1)
        elif key is Key.DOWN:
            self.scroll = min(max(0, len(self.body()) - 1), self.scroll + 1)
        return Transition.stay()


# ----- log export --------------------------------------------------------------------------------


def _export_pick(ctx: Context) -> PickScreen:
    tech = _tech(ctx)
    return PickScreen(
        ctx,
        ctx.t("tech.export.title"),
        lambda tech: tech.export_targets(),
        lambda directory: Transition.replace(_export_confirm(ctx, directory)),
        typed=_a_directory,
        empty=ctx.t("tech.no_dirs", media=tech.media_dir),
        above=(Line(ctx.t("tech.export.pick"), Style.DIM),),
    )


def _export_confirm(ctx: Context, directory: Path) -> FlowMessage:
    tech = _tech(ctx)
    title = ctx.t("tech.export.title")
    body = [Line(ctx.t("tech.export.to", path=directory))]
    body.append(Line(ctx.t("tech.export.what", lines=tech.settings.log_lines)))
    if tech.settings.log_file is None:
        body.append(Line(ctx.t("tech.export.no_log"), Style.DIM))

    def export() -> Transition:
        return Transition.replace(
            WorkingScreen(
                ctx,
                title,
                lambda job: tech.export_logs(directory),
                lambda exported: Transition.replace(_exported(ctx, exported)),
                label="local",
                failed=_failed(ctx, title, Transition.pop),
            )
        )

    return FlowMessage(ctx, title, body, on_enter=export)


def _exported(ctx: Context, exported: Exported) -> FlowMessage:
    body = [
        Line(ctx.t("tech.export.done"), Style.GOOD),
        Line(ctx.t("tech.export.to", path=exported.directory)),
        Line(ctx.t("tech.export.counts", entries=exported.journal_entries, count=exported.queue_rows)),
    ]
    if exported.log_lines is not None:
        body.append(Line(ctx.t("tech.export.log_lines", lines=exported.log_lines)))
    body.append(Line(", ".join(exported.files), Style.DIM))
    return FlowMessage(ctx, ctx.t("tech.export.title"), body)


# ----- firmware update ---------------------------------------------------------------------------


def _image_pick(ctx: Context) -> PickScreen:
    tech = _tech(ctx)
    return PickScreen(
        ctx,
        ctx.t("tech.image.title"),
        _files(".img"),
        lambda image: Transition.replace(_image_check(ctx, image)),
        typed=_a_file,
        empty=ctx.t("tech.no_files", pattern="*.img", media=tech.media_dir),
    )


def _image_refused(ctx: Context, title: str) -> Callable[[BaseException], Transition]:
    def failed(error: BaseException) -> Transition:
        if isinstance(error, ImageRefusedError):
            body: tuple[Line, ...] = (Line(ctx.t("tech.image.refused"), Style.BAD), Line(str(error)))
        else:
            body = explain(ctx, error)
        return Transition.replace(FlowMessage(ctx, title, body))

    return failed


def _image_check(ctx: Context, image: Path) -> WorkingScreen:
    tech = _tech(ctx)
    title = ctx.t("tech.firmware.title")
    return WorkingScreen(
        ctx,
        title,
        lambda job: tech.check_image(image),
        lambda checked: Transition.replace(_image_confirm(ctx, checked)),
        about=(Line(ctx.t("tech.image.checking")), Line(image.name, Style.DIM)),
        label="local",
        failed=_image_refused(ctx, title),
    )


def _image_confirm(ctx: Context, checked: ImageCheck) -> FlowMessage:
    tech = _tech(ctx)
    title = ctx.t("tech.firmware.title")
    installed = checked.installed or ctx.t("tech.image.none")
    body = [
        Line(ctx.t("tech.image.ok"), Style.GOOD),
        Line(checked.path.name),
        Line(ctx.t("tech.image.version", version=checked.version, installed=installed)),
        Line(ctx.t("tech.image.target", arch=checked.arch, python=checked.python, files=checked.files)),
        Line(ctx.t("tech.image.key", signer=checked.key_id), Style.DIM),
    ]
    if checked.development:
        body.append(Line(ctx.t("tech.image.development"), Style.WARN))

    def install() -> Transition:
        return Transition.replace(
            WorkingScreen(
                ctx,
                title,
                lambda job: tech.install_image(checked.path),
                lambda result: Transition.replace(_installed(ctx, result)),
                about=(Line(ctx.t("tech.image.installing")),),
                label="local",
                failed=_image_refused(ctx, title),
            )
        )

    return FlowMessage(ctx, title, body, on_enter=install, hint=ctx.t("hint.tech_install"))


def _installed(ctx: Context, result: InstallResult) -> FlowMessage:
    body = [
        Line(ctx.t("tech.image.installed", version=result.version, slot=result.slot), Style.GOOD),
        Line(ctx.t("tech.image.restart"), Style.WARN),
    ]
    if result.trial is not None:
        body.append(
            Line(ctx.t("tech.image.trial", boots=result.trial.max_boots, previous=result.previous), Style.DIM)
        )
    return FlowMessage(ctx, ctx.t("tech.firmware.title"), body, hint=ctx.t("hint.done"))
