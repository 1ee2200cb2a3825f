"""Turning one Apprise URL into Apprise's plugin object for it, or None."""

from __future__ import annotations

import warnings

import apprise
from apprise.plugins.base import NotifyBase
from apprise.url import PrivacyMode, URLBase


def load(url: str, asset: apprise.AppriseAsset | None = None) -> NotifyBase | None:
    """The plugin for ``url``, or None if Apprise cannot use it (Apprise logs why)."""
    with warnings.catch_warnings():
        # The first URL makes Apprise import all its plugins; on Python 3.11 its email
        # plugin imports the deprecated imghdr module (for PGPy), which warns.
        warnings.filterwarnings(
            "ignore", message="'imghdr' is deprecated", category=DeprecationWarning
        )
        plugin = apprise.Apprise.instantiate(url, asset=asset)
    return plugin if isinstance(plugin, NotifyBase) else None


# How Apprise prints a field in PrivacyMode.Secret ("****"), asked of Apprise itself.
SECRET_MASK: str = URLBase.pprint("x", privacy=True, mode=PrivacyMode.Secret)  # type: ignore[no-untyped-call]


def privacy_urls(plugin: NotifyBase) -> tuple[str, str]:
    """The plugin's URL in clear, and with Apprise's privacy masks (``url(privacy=True)``)."""
    plain: str = plugin.url(privacy=False)  # type: ignore[no-untyped-call]
    private: str = plugin.url(privacy=True)  # type: ignore[no-untyped-call]
    return plain, private
