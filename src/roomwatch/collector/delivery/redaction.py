"""A channel's URL fit to store and show, and the secrets it hides.

What is secret comes from two places:

* Apprise's own privacy URL (``plugin.url(privacy=True)``). Each plugin knows
  which of its fields are secrets and prints them as ``****`` (its
  ``PrivacyMode.Secret``): passwords, and keys such as ``line://``'s token or
  ``pagerduty://``'s keys, however short they are. Its partial masks (``T...2``)
  mark identifiers as well as tokens (a Slack team id), so they are left to the
  rules below.
* Rules on the URL as written, for what Apprise prints in clear and for a URL it
  cannot parse: the password; any query value whose key names a secret (token,
  key, secret, pass, pwd, auth, sig, cred) and every HTTP header ``+Name=value``;
  every token-looking run of characters: 16 or more letters, digits, ``_`` or
  ``-`` with a digit among them, or 24 or more of them (a webhook path's token).
  A short all-letter value that Apprise does not call secret (an ntfy topic such
  as ``ntfy://alerts``) is shown.

The label is the URL as the operator wrote it (not Apprise's rewrite of it),
with every secret replaced by ``***``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from urllib.parse import unquote, unquote_plus

from roomwatch.collector.delivery import plugins
from roomwatch.collector.delivery.scrubbing import MASK, Scrubber, silenced_here

NOT_A_URL = "<not a URL>"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
_RUN = re.compile(r"[A-Za-z0-9_\-]+")
_SECRET_KEY_PARTS = ("token", "key", "secret", "pass", "pwd", "auth", "sig", "cred")
_PARTS = re.compile(r"([/@:?&=#])")  # splits a URL into fields, keeping the delimiters


@dataclass(frozen=True, slots=True)
class Redacted:
    label: str  # the URL fit to store and show
    secrets: frozenset[str]  # every secret it hid, as written and URL-decoded


def redact_url(url: str) -> str:
    """The URL with its password, secret fields and token-looking parts masked.

    >>> redact_url("json://user:s3cret@host/x")
    'json://user:***@host/x'
    """
    return redact(url).label


def redact(url: str) -> Redacted:
    """The URL fit to store and show, and the secrets it hid."""
    match = _SCHEME.match(url.strip())
    if match is None:
        return Redacted(NOT_A_URL, frozenset({url} - {""}))
    masker = _Masker(apprise_secrets(url))
    label = masker.mask(match.group(1), match.group(2))
    secrets = set(masker.secrets)
    for secret in masker.secrets:
        secrets.update({unquote(secret), unquote_plus(secret)})
    secrets.discard("")
    return Redacted(label, frozenset(secrets))


def apprise_secrets(url: str) -> set[str]:
    """The fields Apprise's plugin for ``url`` prints as ``****``; none if it cannot parse it."""
    with silenced_here("apprise"):  # it logs an unusable URL in clear; callers say so their way
        plugin = plugins.load(url)
    if plugin is None:
        return set()
    plain, private = (_PARTS.split(text) for text in plugins.privacy_urls(plugin))
    secrets: set[str] = set()
    matcher = SequenceMatcher(None, plain, private, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        clear, masked = plain[i1:i2], private[j1:j2]
        if tag != "replace" or plugins.SECRET_MASK not in masked:
            continue
        if masked == [plugins.SECRET_MASK]:
            secrets.add("".join(clear))  # one field, even one holding a delimiter
        elif len(clear) == len(masked):
            secrets.update(
                a for a, b in zip(clear, masked, strict=True) if b == plugins.SECRET_MASK
            )
        else:  # no clear pairing: every field of the stretch, rather than a secret shown
            secrets.update(a for a in clear if not _PARTS.fullmatch(a))
    secrets |= {unquote(s) for s in secrets}
    secrets.discard("")
    return secrets


def _looks_like_token(run: str) -> bool:
    return len(run) >= 24 or (len(run) >= 16 and any(c.isdigit() for c in run))


def _secret_key(key: str) -> bool:
    if key.startswith("+"):  # an HTTP header for json://, xml://, form:// and friends
        return True
    name = key.lstrip("-:").lower()
    return any(part in name for part in _SECRET_KEY_PARTS)


class _Masker:
    """Masks one URL's secrets, field by field, and remembers what it masked."""

    def __init__(self, known: set[str]) -> None:
        self.known = known  # Apprise's secrets for this URL
        self.secrets: set[str] = set(known)

    def mask(self, scheme: str, rest: str) -> str:
        rest, question, query = rest.partition("?")
        slash = rest.find("/")
        authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        userinfo, at, hostport = authority.rpartition("@")
        out = [scheme, "://"]
        if at:
            user, colon, password = userinfo.partition(":")
            out.append(self.hide(user))
            if colon:
                out.append(":" + (self.secret(password) if password else ""))
            out.append("@")
        out.append(":".join(self.hide(part) for part in hostport.split(":")))
        out.append("/".join(self.hide(segment) for segment in path.split("/")))
        if question:
            out.append("?" + "&".join(self.pair(pair) for pair in query.split("&")))
        # A secret Apprise knows may sit inside a field rather than be one: hide it there too.
        return Scrubber(self.known)("".join(out))

    def pair(self, pair: str) -> str:
        key, equals, value = pair.partition("=")
        secret = equals and value and _secret_key(key)
        value = self.secret(value) if secret else self.hide(value)
        return f"{self.hide(key)}{equals}{value}"

    def secret(self, value: str) -> str:
        self.secrets.add(value)
        return MASK

    def hide(self, text: str) -> str:
        """A field: masked whole if Apprise calls it secret, else its token-looking runs."""
        if text and (text in self.known or unquote(text) in self.known):
            return self.secret(text)
        return _RUN.sub(self._token, text)

    def _token(self, match: re.Match[str]) -> str:
        run = match.group(0)
        return self.secret(run) if _looks_like_token(run) else run
