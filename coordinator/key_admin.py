"""``talkfarm-admin keys``: the API keys.

    talkfarm-admin keys create --name NAME [--tier TIER] [--operator] [--token-file PATH]
        prints the token once (or writes it to PATH, readable by its owner only)
    talkfarm-admin keys list                       name, tier, ID, created, revoked
    talkfarm-admin keys revoke ID_OR_NAME          stops the key within auth.key_cache_seconds
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from contracts.settings import get_settings
from coordinator.store import migrate
from coordinator.store.keys import KeyStore
from coordinator.store.repo import make_engine


def _keys() -> KeyStore:
    engine = make_engine(get_settings().db_url)
    migrate.check(engine)
    return KeyStore(engine)


def _create(args: argparse.Namespace) -> int:
    settings = get_settings()
    tier = args.tier or settings.auth.default_tier
    if tier not in settings.auth.tiers:
        print(f"unknown tier {tier!r}; the tiers are {', '.join(sorted(settings.auth.tiers))}")
        return 2
    row, token = _keys().create(args.name, tier, operator=args.operator)
    if args.token_file:
        path = Path(args.token_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            f.write(token + "\n")
        print(f"key {row.name} ({row.tier}{', operator' if row.operator else ''}) {row.id}: token in {path}")
    else:
        print(f"key {row.name} ({row.tier}{', operator' if row.operator else ''}) {row.id}")
        print(f"token (shown once, keep it): {token}")
    return 0


def _list(_: argparse.Namespace) -> int:
    for row in _keys().all():
        revoked = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
        role = " operator" if row.operator else ""
        print(f"{row.name:<24} {row.tier:<10}{role:<10} {row.id}  created {row.created_at:%Y-%m-%d %H:%M}  {revoked}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    revoked = _keys().revoke(args.key)
    for row in revoked:
        print(f"revoked {row.name} {row.id}")
    if not revoked:
        print(f"no live key has the ID or name {args.key!r}")
        return 1
    return 0


def add_parsers(sub: Any) -> None:
    keys = sub.add_parser("keys", help="the API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="make a key and print its token once")
    create.add_argument("--name", required=True, help="who or what uses it")
    create.add_argument("--tier", help="its tier (auth.tiers; default: auth.default_tier)")
    create.add_argument("--operator", action="store_true", help="may also read /metrics and /v1/stats")
    create.add_argument("--token-file", help="write the token to this file (mode 0600) instead of printing it")
    create.set_defaults(func=_create)
    keys.add_parser("list", help="every key, live and revoked").set_defaults(func=_list)
    revoke = keys.add_parser("revoke", help="revoke a key by ID, or every live key with a name")
    revoke.add_argument("key")
    revoke.set_defaults(func=_revoke)
