"""Text from the data, made safe to print on a terminal; docstrings made plain Markdown.

Ids, event names, column and file names come from the user's logs and may hold control
characters: an escape sequence (``\\x1b[2J``) that clears or recolours the terminal, a carriage
return or newline that forges a line of output, a bidirectional override that reorders what is
shown, or a zero-width character that makes two different ids look the same. Everything printed
by the command line goes through :func:`printable`, which shows such characters as Python-style
escapes instead of letting the terminal interpret them.
"""

from __future__ import annotations

import re
import unicodedata

# Control (Cc: C0, DEL, C1), format (Cf: bidi overrides, zero-width characters, soft hyphen) and
# the Unicode line and paragraph separators.
_ESCAPED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with its control and invisible format characters shown as escapes.

    Args:
        text: any text, typically a message that quotes values from the data.
        keep_newlines: keep ``\\n`` as a line break (for messages of several lines that the
            program wrote itself); every other control character is still escaped.

    Returns:
        The text, unchanged when it holds no such character.

    Examples:
        >>> printable("user\\x1b[31m-1")
        'user\\\\x1b[31m-1'
        >>> printable("a\\u200bb")
        'a\\\\u200bb'
        >>> print(printable("two\\nlines\\r", keep_newlines=True))
        two
        lines\\r
    """
    if text.isprintable():
        return text
    return "".join(
        char
        if (keep_newlines and char == "\n") or unicodedata.category(char) not in _ESCAPED_CATEGORIES
        else _escape(char)
        for char in text
    )


def is_invisible(text: str) -> bool:
    """Whether ``text`` shows nothing: empty, or only spaces and invisible format characters.

    Examples:
        >>> is_invisible(" \\u200b\\u00a0")
        True
        >>> is_invisible("a\\u200b")
        False
    """
    return all(char.isspace() or unicodedata.category(char) in _ESCAPED_CATEGORIES for char in text)


# A Sphinx cross-reference: :mod:`a.b`, :py:func:`~a.b.c` (shows "c"), :class:`Title <a.B>`.
_SPHINX_ROLE = re.compile(r":(?:[a-z]+:)?[a-z]+:`(?P<tilde>~?)(?P<text>[^`<]*?)\s*(?:<[^`>]*>)?`")
_RST_LITERAL = re.compile(r"``(?P<text>[^`]+?)``")


def markdown_from_docstring(text: str) -> str:
    """A docstring's reStructuredText inline markup as plain Markdown, for the Dagster UI.

    Sphinx roles become code spans of what Sphinx would show (the last part of a ``~`` target,
    the title of a titled one), and double-backtick literals become single-backtick ones.

    Examples:
        >>> markdown_from_docstring("policy: :mod:`exp_dagster.decision`")
        'policy: `exp_dagster.decision`'
        >>> markdown_from_docstring("see :py:func:`~exp_dagster.triggers.refresh_condition`")
        'see `refresh_condition`'
        >>> markdown_from_docstring(":class:`the policy <exp_dagster.spec.AnalysisPolicy>`")
        '`the policy`'
        >>> markdown_from_docstring("counted in ``crossover_units``")
        'counted in `crossover_units`'
    """

    def role(match: re.Match[str]) -> str:
        shown = match["text"].strip()
        if match["tilde"]:
            shown = shown.rsplit(".", 1)[-1]
        return f"`{shown}`"

    return _RST_LITERAL.sub(r"`\g<text>`", _SPHINX_ROLE.sub(role, text))
