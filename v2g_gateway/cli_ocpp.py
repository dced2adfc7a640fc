"""`v2g-gateway password generate`: a charger password the OCPP 2.0.1 spec allows.

OCPP 2.0.1 wants 16-40 characters of passwordString (letters, digits and `*-_=:+|@.`); a
random one from `secrets` is far beyond brute force, which is why the gateway can keep only a
cheap salted hash of it.
"""

from __future__ import annotations

import argparse
import secrets
import string
import sys

EXIT_USAGE = 2
ALPHABET = string.ascii_letters + string.digits + "*-_=:+|@."
MIN_LENGTH, MAX_LENGTH, DEFAULT_LENGTH = 16, 40, 32


def generate_password(length: int = DEFAULT_LENGTH) -> str:
    """A random password of `length` OCPP passwordString characters (at least one of each kind)."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"length must be {MIN_LENGTH}-{MAX_LENGTH}, got {length}")
    while True:
        pw = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if (
            any(c.islower() for c in pw)
            and any(c.isupper() for c in pw)
            and any(c.isdigit() for c in pw)
        ):
            return pw


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        pw = generate_password(args.length)
    except ValueError as exc:
        print(f"v2g-gateway: password generate: --length: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(pw)
    return 0


def add_subparsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("password", help="charger passwords (OCPP security profiles 1 and 2)")
    psub = p.add_subparsers(dest="password_command", required=True, metavar="ACTION")
    gen = psub.add_parser(
        "generate", help="print a strong random password to put in [[chargers]] and the charger"
    )
    gen.add_argument(
        "--length",
        type=int,
        default=DEFAULT_LENGTH,
        help=f"{MIN_LENGTH}-{MAX_LENGTH} characters (default {DEFAULT_LENGTH})",
    )
    gen.set_defaults(func=cmd_generate)
