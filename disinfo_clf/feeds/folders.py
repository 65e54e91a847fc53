"""Walk a folder of ``.txt``/``.html`` documents without leaving it and without stopping at a bad entry.

Every entry with a document suffix gives exactly one :class:`FolderEntry`, in a deterministic
order (a folder's files by name, then its subfolders by name, depth first): its bytes, or an
``error`` (broken link, link loop, unreadable file or subfolder), or a ``warning`` saying why it
was skipped (a link leading out of the folder, a named pipe or other non-regular file). Links
inside the folder are followed for files; links to folders are not followed (their files are
read through their real path when that is inside the folder).
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..text.textio import printable_path

__all__ = ["DOCUMENT_SUFFIXES", "FolderEntry", "excluding", "walk_folder"]

DOCUMENT_SUFFIXES = {".txt": "text", ".html": "html", ".htm": "html"}
"""File suffixes read from a folder, and whether the file is plain text or HTML."""
_KINDS = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFDIR: "a folder"}


@dataclass(frozen=True)
class FolderEntry:
    """One entry of a folder walk: ``data`` when it was read, else ``error`` or (skipped) ``warning``."""

    path: str
    """The entry's path under the folder as given, printable (undecodable name bytes as ``\\xNN``)."""
    kind: str | None
    """``"text"`` or ``"html"`` for a document; ``None`` for a subfolder."""
    data: bytes | None = None
    error: str | None = None
    warning: str | None = None


_EXCLUDED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("excluded_from_folders", default=())


@contextlib.contextmanager
def excluding(paths: Iterable[str | os.PathLike[str]]) -> Iterator[None]:
    """While inside, folder walks leave out ``paths`` (files or folders, compared by device and inode):
    a run's own output and manifest inside an input folder are never read as records or fingerprinted."""
    token = _EXCLUDED.set(tuple(os.fspath(p) for p in paths))
    try:
        yield
    finally:
        _EXCLUDED.reset(token)


def _is_excluded(entry: os.DirEntry[str], excluded: tuple[str, ...]) -> bool:
    for path in excluded:
        if os.path.basename(path) == entry.name:
            with contextlib.suppress(OSError):
                if os.path.samefile(path, entry.path):
                    return True
    return False


def walk_folder(root: str | Path) -> Iterator[FolderEntry]:
    """Every document entry under ``root`` (see the module docstring for the order and the rules)."""
    root, excluded = Path(root), _EXCLUDED.get()
    real_root = os.path.realpath(root)
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            yield FolderEntry(printable_path(directory), None, error=f"{printable_path(directory)}: cannot read "
                              f"this folder: {exc.strerror or exc}; make it readable (chmod) or move it out of the input")
            continue
        subfolders: list[Path] = []
        for entry in entries:
            path = Path(directory, entry.name)
            if excluded and _is_excluded(entry, excluded):
                continue
            if _is_dir(entry):
                if not entry.is_symlink():
                    subfolders.append(path)
                elif not _inside(os.path.realpath(path), real_root):
                    shown = printable_path(path)
                    yield FolderEntry(shown, None, warning=f"{shown}: skipped: a symbolic link to the folder "
                                      f"{printable_path(os.path.realpath(path))}, outside {printable_path(root)}; "
                                      "links out of an input folder are not followed (name that folder as an input "
                                      "to score it)")
                continue
            kind = DOCUMENT_SUFFIXES.get(Path(entry.name).suffix.lower())
            if kind is not None:
                yield _read_entry(path, kind, real_root, root)
        stack.extend(reversed(subfolders))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _inside(path: str, real_root: str) -> bool:
    return path == real_root or os.path.commonpath([path, real_root]) == real_root


def _read_entry(path: Path, kind: str, real_root: str, root: Path) -> FolderEntry:
    shown = printable_path(path)
    target: str | Path = path
    if path.is_symlink():
        try:
            target = os.path.realpath(path, strict=True)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                reason = "a symbolic link loop (the link leads back to itself); remove or fix the link"
            else:
                reason = (f"a broken symbolic link (its target {printable_path(os.readlink(path))} does not exist); "
                          "remove the link or restore its target")
            return FolderEntry(shown, kind, error=f"{shown}: cannot read: {reason}")
        if not _inside(target, real_root):
            return FolderEntry(shown, kind, warning=f"{shown}: skipped: a symbolic link to {printable_path(target)}, "
                               f"outside {printable_path(root)}; links out of an input folder are not followed "
                               "(name that file as an input to score it)")
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; O_NOFOLLOW: no link swapped in meanwhile.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return FolderEntry(shown, kind, error=f"{shown}: cannot read: {exc.strerror or exc}; "
                           "make it readable (chmod) or move it out of the input folder")
    with os.fdopen(fd, "rb") as stream:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            return FolderEntry(shown, kind, warning=f"{shown}: skipped: {what}, not a regular file")
        try:
            return FolderEntry(shown, kind, stream.read())
        except OSError as exc:
            return FolderEntry(shown, kind, error=f"{shown}: cannot read: {exc.strerror or exc}")
