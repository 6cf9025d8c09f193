"""The secret formats ``pipeline.redact`` knows, as data: provider tokens and context rules.

Every pattern here is linear in its input: quantifiers are bounded or end where their character
class ends, and nothing nests an unbounded repeat inside another (tests/test_redact.py feeds each
rule adversarial input and checks the work grows linearly with its size).

Provider tokens start with a literal prefix (fast scanning); the token-start boundary is checked
by the replacer in ``pipeline.redact``, as a look-behind would slow every scan. Context rules
cover secrets that have no prefix of their own (bare hex auth tokens, card numbers, Sentry DSN
keys): each needs a nearby word or a checksum, so ordinary hex ids and numbers stay.
"""

from __future__ import annotations

import re

# Provider formats, most specific first. Each starts with its literal prefix (fast scanning);
# the token-start boundary is checked in the replacer, as a look-behind would slow every scan.
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
E = r"(?![A-Za-z0-9_\-])"
TOKENS: list[tuple[str, re.Pattern]] = [
    ("anthropic", re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    ("openai", re.compile(r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}" + E)),
    (
        "github",
        re.compile(r"(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})" + E),
    ),
    ("slack", re.compile(r"xox[abposre]-[A-Za-z0-9\-]{10,}")),
    ("slack", re.compile(r"xapp-\d-[A-Za-z0-9\-]{10,}")),
    (
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]+"),
    ),
    ("stripe", re.compile(r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + E)),
    ("stripe", re.compile(r"whsec_[A-Za-z0-9]{24,}" + E)),
    ("google", re.compile(r"AIza[0-9A-Za-z_\-]{35}" + E)),
    ("google", re.compile(r"GOCSPX-[A-Za-z0-9_\-]{20,}")),
    ("google", re.compile(r"ya29\.[0-9A-Za-z_\-]{20,}")),
    (
        "aws_access_key",
        re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ),
    ("jwt", re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    ("npm", re.compile(r"npm_[A-Za-z0-9]{36}" + E)),
    ("huggingface", re.compile(r"hf_[A-Za-z0-9]{30,}" + E)),
    ("gitlab", re.compile(r"gl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_\-]{20,}" + E)),
    ("sendgrid", re.compile(r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + E)),
    ("digitalocean", re.compile(r"do[opr]_v1_[a-f0-9]{64}" + E)),
    # Added after a sweep of 41 formats (issue 12); every one is anchored on its literal prefix.
    ("azure_client_secret", re.compile(r"[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}" + E)),
    ("mailgun", re.compile(r"key-[0-9a-zA-Z]{32}" + E)),
    ("mailgun", re.compile(r"[0-9a-f]{32}-[0-9a-f]{8}-[0-9a-f]{8}" + E)),
    (
        "discord_webhook",
        re.compile(
            r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/webhooks/\d{5,30}/"
            r"[A-Za-z0-9_\-]{20,}"
        ),
    ),
    (
        "discord",
        re.compile(r"[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,40}" + E),
    ),
    ("databricks", re.compile(r"dapi[0-9a-f]{32}(?:-\d)?" + E)),
    ("shopify", re.compile(r"shp(?:at|ca|pa|ss)_[0-9a-fA-F]{32}" + E)),
    ("square", re.compile(r"sq0(?:csp|atp|idp)-[0-9A-Za-z_\-]{22,60}" + E)),
    ("square", re.compile(r"EAAA[0-9A-Za-z_\-]{60}" + E)),
    ("linear", re.compile(r"lin_(?:api|oauth)_[0-9A-Za-z]{32,64}" + E)),
]


# Bare 32-hex auth tokens (Twilio) and UUID API keys (Heroku) are only secrets near their
# provider's name: a window after the name, within which such values are replaced.
PROVIDER_CONTEXT = re.compile(r"(?i:twilio|heroku)[^\n]{0,300}(?:\n[^\n]{0,300}){0,3}")
CONTEXT_VALUE = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{12})(?![A-Za-z0-9_\-])"
)
# A Sentry DSN's key is the user part of its URL: https://<32 hex>[:<32 hex>]@host/project
SENTRY_DSN = re.compile(r"(?P<head>://)(?P<val>[0-9a-f]{32})(?=(?::[0-9a-f]{32})?@)")
# docker's config.json: "auth": "<base64 of user:password>"
DOCKER_AUTH = re.compile(r'(?P<head>"auth"\s{0,20}:\s{0,20}")(?P<val>[A-Za-z0-9+/]{8,4000}={0,2})"')
# mysql -pSECRET (no space: with a space, -p prompts); only on a line running a MySQL client.
MYSQL_PASSWORD = re.compile(r"(?P<head>(?<![\w\-])-p)(?P<val>[^\s\"'\-][^\s\"']{2,400})")
MYSQL_CLIENT = re.compile(r"\b(?:mysql|mysqldump|mysqladmin|mariadb)\b")
# Cookie: / Set-Cookie: header values (name=value pairs).
COOKIE = re.compile(
    r"(?P<head>(?<![\w\-])(?i:set-cookie|cookie)[\"']?[ \t]{0,20}:[ \t]{0,20})"
    r"(?P<val>[^\s=;\"']{1,200}=[^\n\"']{1,4000})"
)
# "my password is X" in prose; X must hold a digit or a symbol ("the password is wrong" stays).
SPOKEN_PASSWORD = re.compile(
    r"(?P<head>\b(?i:my|the|our|your|his|her|their)[ \t]+(?:[A-Za-z]{1,20}[ \t]+)?"
    r"(?i:password|passphrase|passcode|pin)[ \t]+(?i:is|was|=|:)[ \t]+[\"']?)"
    r"(?P<val>[^\s\"']{3,200})"
)
# Payment card numbers: 13-19 digits (single spaces or dashes between groups allowed) with a
# known issuer prefix; the replacer checks the Luhn sum.
CARD = re.compile(r"(?<![\d\-])(?:4|5[1-5]|2[2-7]|3[47]|6[05])\d(?:[ \-]?\d){11,17}(?![\d\-])")
# US social security numbers (the invalid area and group numbers excluded).
SSN = re.compile(r"(?<![\d\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d\-])")
# A PEM body pasted without its BEGIN/END lines: DER starts with "MII" in base64.
PEM_BODY = re.compile(
    r"(?<![A-Za-z0-9+/])MII[A-Za-z0-9+/]{60,76}={0,2}(?:\r?\n[A-Za-z0-9+/]{16,76}={0,2})*"
)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
