"""Registry text (titles, citations, URLs) as the report's captions show it: always as text.

Snakemake renders a caption with Jinja, then reStructuredText, and also embeds the job's params
(where the captions find the registry text) unescaped in a ``<script>`` block of ``report.html``.
So a value reaches a caption only through :func:`rst_text`, which

- turns every control character (a newline could start a directive: ``.. raw:: html``,
  ``.. include:: /path``) into a space,
- backslash-escapes every other ASCII punctuation character (no inline markup, role, link or
  substitution survives), and
- writes ``<``, ``>`` and ``&`` as the substitutions ``|lt|``, ``|gt|``, ``|amp|`` that the captions
  define (:data:`SUBSTITUTIONS`), so that the params hold none of them (no ``</script>``, no ``<!--``)
  while the caption shows the characters themselves.

A URL becomes a link only when it is a plain ``http(s)``/``ftp`` address (:func:`rst_link`: letters,
digits and the URL punctuation, which may include ``&``, harmless in a script block; never ``<``, ``>``,
a quote, a backquote or a space); any other is shown as text.
"""

from __future__ import annotations

import re
import string

SUBSTITUTIONS = {"<": "lt", ">": "gt", "&": "amp"}  # each defined in the captions: .. |lt| unicode:: U+0003C
_PLAIN_URL = re.compile(r"^(https?|ftp)://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~!$&'()*+,;=:@%/?#-]*)?(?<!_)$")
_HOST = re.compile(r"^(?:https?|ftp)://([A-Za-z0-9.-]+)")


def rst_text(value) -> str:
    """``value`` as reStructuredText inline text that renders as exactly these characters (control
    characters as spaces), holding no ``<``, ``>`` or ``&``."""
    out = []
    for char in str(value):
        if char in SUBSTITUTIONS:
            out.append(f"\\ |{SUBSTITUTIONS[char]}|\\ ")  # escaped spaces: a substitution inside a word
        elif char in string.punctuation:
            out.append("\\" + char)
        elif char.isprintable() or char == " ":
            out.append(char)
        else:
            out.append(" ")
    return "".join(out)


def rst_link(url) -> str:
    """A registry URL for a caption: a link named by its host when it is a plain address, else text."""
    url = str(url)
    if _PLAIN_URL.match(url):
        return f"`{_HOST.match(url)[1]} <{url}>`__"
    return rst_text(url)
