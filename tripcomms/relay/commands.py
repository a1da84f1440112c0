"""Parsing what arrives by SMS: staff commands and parents' keywords."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BODY = 1600

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
START_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}

_CODE = re.compile(r"^\s*#\s*(\d{1,6})\b[\s:,.\-]*(.*)$", re.DOTALL)
_ALL = re.compile(r"^\s*all\b[\s:,.\-]*(.*)$", re.DOTALL | re.IGNORECASE)
_WORD = re.compile(r"^\W*([A-Za-z]+)\W*$")


@dataclass(frozen=True)
class Command:
    name: str  # "code", "all", "list", "help", "unknown"
    code: int | None = None
    text: str = ""


def parse_command(body: str) -> Command:
    """Read a staff phone's text: ``#12 text``, ``ALL text``, ``LIST`` or ``HELP``.

    Case and spaces are forgiven ("# 12: text", "all  text", " list "). Anything else is
    ``unknown`` and gets the help text.
    """
    match = _CODE.match(body)
    if match:
        return Command("code", int(match.group(1)), match.group(2).strip())
    match = _ALL.match(body)
    if match:
        return Command("all", text=match.group(1).strip())
    word = keyword(body)
    if word == "LIST":
        return Command("list")
    if word in HELP_WORDS:
        return Command("help")
    return Command("unknown")


def keyword(body: str) -> str | None:
    """The single word a text consists of, upper-cased, or None."""
    match = _WORD.match(body or "")
    return match.group(1).upper() if match else None


def media_note(media_types: list[str]) -> str:
    """ "[2 pictures not forwarded]": media is never fetched or forwarded (policy 31, 71)."""
    count = len(media_types)
    if not count:
        return ""
    pictures = all(t.lower().startswith("image/") for t in media_types)
    noun = "picture" if pictures else "attachment"
    return f"[{count} {noun}{'s' if count != 1 else ''} not forwarded]"


def split_for_sms(lines: list[str], limit: int = 1500) -> list[str]:
    """Join lines into as few texts as possible, each within ``limit`` characters."""
    parts: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit and current:
            parts.append(current)
            current = line[:limit]
        else:
            current = candidate[:limit]
    if current:
        parts.append(current)
    return parts
