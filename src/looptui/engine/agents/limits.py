"""When a provider's usage or rate limit resets, read from what the provider said.

Each agent meets its limit in its own words: HTTP headers for the model APIs (`retry-after`
in seconds or as an HTTP date, OpenAI's `x-ratelimit-reset-*` durations such as "1m30s",
Anthropic's `anthropic-ratelimit-*-reset` RFC 3339 times), Claude Code's stream
(`rate_limit_event.rate_limit_info.resetsAt`, "Claude AI usage limit reached|<epoch>") and
Codex's message ("… try again in 2 hours 5 minutes", "… try again at 3:28 PM"). Every
function here turns one of them into epoch seconds, or None when the text gives no time:
a limit without a reset time is an ordinary failure, never a guess.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import re
from collections.abc import Mapping

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_OPENAI_RESETS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_ANTHROPIC_RESET = re.compile(r"^anthropic-ratelimit-([a-z-]+)-reset$")
_CLAUDE_LIMIT = re.compile(r"usage limit reached\|(\d{9,13})", re.IGNORECASE)
_TRY_IN = re.compile(r"try again in\s+(.+?)(?:\.\s|\.?$)", re.IGNORECASE)
_TRY_AT = re.compile(r"try again at\s+(.+?)(?:\.\s|\.?\s*$)", re.IGNORECASE)
_WORD_UNITS = {
    "d": 86400.0,
    "day": 86400.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
}
_WORD_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)", re.IGNORECASE)
_ORDINAL = re.compile(r"(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_CLOCK_FORMATS = ("%I:%M %p", "%I %p", "%H:%M")
_DATE_FORMATS = ("%b %d, %Y %I:%M %p", "%B %d, %Y %I:%M %p")


def seconds_after(value: str | None, now: float) -> float | None:
    """A `retry-after` value as a wait in seconds: a number, or an HTTP date counted from
    `now`; None when it is neither."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - now
    return None if math.isnan(seconds) or math.isinf(seconds) else max(0.0, seconds)


def go_duration(text: str | None) -> float | None:
    """OpenAI's reset durations ("1m30s", "20ms", "6m0s", "1h2m3.5s") in seconds."""
    if not text:
        return None
    text = text.strip()
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _GO_UNITS[unit] for number, unit in parts)


def rfc3339(text: str | None) -> float | None:
    """An RFC 3339 time ("2026-05-01T14:05:00Z") in epoch seconds (UTC when it has no zone)."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def epoch(value: object) -> float | None:
    """An epoch time given as a number or digits, in seconds or (when that large) in ms."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int | float) or math.isnan(value) or value <= 0:
        return None
    return float(value) / 1000 if value > 1e12 else float(value)


def reset_from_headers(headers: Mapping[str, str], now: float) -> float | None:
    """When a 429 answer's limit resets, from its headers; None when they do not say.

    `retry-after` (and `retry-after-ms`) is the provider's own answer and comes first. Else
    the latest reset of the buckets that are spent (remaining 0), or of all the buckets the
    headers name when none says it is spent: the run waits too long rather than too little.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    wait = seconds_after(lowered.get("retry-after"), now)
    if wait is None and lowered.get("retry-after-ms"):
        milliseconds = seconds_after(lowered["retry-after-ms"], now)
        wait = None if milliseconds is None else milliseconds / 1000
    if wait is not None:
        return now + wait
    spent: list[float] = []
    named: list[float] = []
    for key in _OPENAI_RESETS:
        seconds = go_duration(lowered.get(key))
        if seconds is not None:
            bucket = key.removeprefix("x-ratelimit-reset-")
            (spent if lowered.get(f"x-ratelimit-remaining-{bucket}") == "0" else named).append(
                now + seconds
            )
    for key, value in lowered.items():
        match = _ANTHROPIC_RESET.match(key)
        when = rfc3339(value) if match else None
        if match and when is not None:
            remaining = lowered.get(f"anthropic-ratelimit-{match.group(1)}-remaining")
            (spent if remaining == "0" else named).append(when)
    resets = spent or named
    return max(resets) if resets else None


def claude_limit_text(text: str | None) -> float | None:
    """The reset of Claude Code's "Claude AI usage limit reached|<epoch>" result text."""
    match = _CLAUDE_LIMIT.search(text or "")
    return epoch(match.group(1)) if match else None


def codex_limit_text(text: str | None, now: float) -> float | None:
    """The reset a Codex usage-limit message gives: "try again in 3 days 6 hours 57 minutes"
    (from `now`), or "try again at 3:28 PM" / "at Aug 8th, 2026 12:30 PM" (local time; a
    clock time already past today is tomorrow's). None for a message that is not about a
    usage or rate limit, or that names no time ("try again later")."""
    if not text or not re.search(r"(usage|rate) limit", text, re.IGNORECASE):
        return None
    within = _TRY_IN.search(text)
    if within:
        seconds = word_duration(within.group(1))
        return None if seconds is None else now + seconds
    at = _TRY_AT.search(text)
    return local_time(at.group(1), now) if at else None


def word_duration(text: str) -> float | None:
    """ "3 days 6 hours 57 minutes", "45 minutes", "2h 5m" in seconds; None otherwise."""
    total, found = 0.0, False
    for number, unit in _WORD_DURATION.findall(text):
        unit = unit.lower()
        scale = _WORD_UNITS.get(unit) or _WORD_UNITS.get(unit.removesuffix("s"))
        if scale is None:
            return None
        total, found = total + float(number) * scale, True
    return total if found else None


def local_time(text: str, now: float) -> float | None:
    """A local clock time ("3:28 PM", "15:28": the next one from `now`) or a local date and
    time ("Aug 8th, 2026 12:30 PM") in epoch seconds."""
    text = " ".join(_ORDINAL.sub(r"\1", text.strip()).split())
    today = dt.datetime.fromtimestamp(now).astimezone()
    for form in _CLOCK_FORMATS:
        try:
            clock = dt.datetime.strptime(text.upper(), form).time()
        except ValueError:
            continue
        when = dt.datetime.combine(today.date(), clock)
        stamp = when.astimezone().timestamp()
        if stamp < now:  # a time of day already past: tomorrow's
            stamp = (when + dt.timedelta(days=1)).astimezone().timestamp()
        return stamp
    for form in _DATE_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, form)
        except ValueError:
            continue
        return parsed.astimezone().timestamp()
    return None
