"""Schemathesis hooks for scripts/schemathesis.sh: what the OpenAPI document cannot say.

- Provider calls are signed: `X-Croupier-Signature` is the hex HMAC-SHA256 of the path and
  query, a newline, and the body, under the provider key's secret. Schemathesis sends the key
  id (`X-Croupier-Key`, the `provider_signature` scheme); this signs the bytes it sends.
- Binary batches (`application/octet-stream` on POST /v1/accounts and /v1/transfers) are
  128-byte records in TigerBeetle's layout, which JSON Schema cannot describe: positive cases
  get well-formed records (random ids, ledgers, kinds, flags and amounts), negative cases a
  body that is not a whole number of records.
"""

import hashlib
import hmac
import os
import random
import struct
from urllib.parse import urlsplit

import requests
import schemathesis

PROVIDER_SECRET = bytes.fromhex(os.environ["CROUPIER_PROVIDER_SECRET"])
RECORD_BYTES = 128


class ProviderSignature(requests.auth.AuthBase):
    """Signs the prepared request, so the signature covers exactly the bytes on the wire."""

    def __call__(self, request):
        if "X-Croupier-Key" not in request.headers:
            return request
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        url = urlsplit(request.url)
        target = (url.path + ("?" + url.query if url.query else "")).encode()
        signature = hmac.new(PROVIDER_SECRET, target + b"\n" + body, hashlib.sha256).hexdigest()
        request.headers["X-Croupier-Signature"] = signature
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = ProviderSignature()


# Binary records -------------------------------------------------------------------------------
# Every phase runs `map_case` (the coverage phase runs no `flatmap_case`), so the records are
# drawn from a generator seeded with the bytes schemathesis generated: reproducible with --seed.

LEDGER_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
ACCOUNT_FLAG_BITS = [0, 1, 2, 3, 5]  # linked, debits/credits limits, history (ignored), closed
TRANSFER_FLAG_BITS = [0, 1, 2, 3, 6, 7]  # linked, pending, post, void, closing debit/credit


def flag_bits(rng, bits):
    return sum(1 << bit for bit in bits if rng.random() < 0.3)


def ledger_slot(rng):
    code = "".join(rng.choice(LEDGER_CHARACTERS) for _ in range(rng.randint(1, 4)))
    return code.encode().ljust(4, b"\0")


def nonzero_u128(rng):
    return rng.choice([rng.randint(1, 2**16), rng.randint(1, 2**128 - 1)]).to_bytes(16, "little")


def account_record(rng):
    record = bytearray(RECORD_BYTES)
    record[0:16] = nonzero_u128(rng)
    record[112:116] = ledger_slot(rng)
    struct.pack_into("<HH", record, 116, rng.randint(1, 6), flag_bits(rng, ACCOUNT_FLAG_BITS))
    return bytes(record)


def transfer_record(rng):
    record = bytearray(RECORD_BYTES)
    for offset in (0, 16, 32):  # id, debit account, credit account
        record[offset : offset + 16] = nonzero_u128(rng)
    record[48:64] = rng.randint(0, 2**64 - 1).to_bytes(16, "little")  # amount
    record[64:80] = rng.choice([0, rng.randint(0, 2**128 - 1)]).to_bytes(16, "little")  # pending id
    struct.pack_into("<I", record, 108, rng.choice([0, rng.randint(0, 2**32 - 1)]))  # timeout
    record[112:116] = ledger_slot(rng)
    struct.pack_into("<H", record, 118, flag_bits(rng, TRANSFER_FLAG_BITS))
    return bytes(record)


RECORDS = {"/v1/accounts": account_record, "/v1/transfers": transfer_record}


@schemathesis.hook
def map_case(context, case):
    record = RECORDS.get(case.operation.path)
    if record is None or case.media_type != "application/octet-stream":
        return case
    generated = case.body if isinstance(case.body, (bytes, bytearray)) else repr(case.body).encode()
    rng = random.Random(hashlib.sha256(generated).digest())
    if case.meta is not None and case.meta.generation.mode.is_negative:
        # Not a whole number of records.
        body = bytes(generated) or b"\0"
        if len(body) % RECORD_BYTES == 0:
            body += b"\0"
        case.body = body
    else:
        case.body = b"".join(record(rng) for _ in range(rng.randint(0, 4)))
    return case
