"""AES-GCM envelopes, blind indexes, TOTP matching and recovery codes."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pyotp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.security import mfa
from quantdesk.security.pii import PiiCipher, PiiDecryptionError, parse_key_list
from quantdesk.settings import ConfigurationError

K1, K2, INDEX = os.urandom(32), os.urandom(32), os.urandom(32)


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_round_trip(value: str) -> None:
    cipher = PiiCipher([("k1", K1)], INDEX)
    envelope = cipher.encrypt(value, field="users.email")
    assert envelope.startswith("k1:")
    assert cipher.decrypt(envelope, field="users.email") == value


def test_nonces_differ_and_tampering_is_detected() -> None:
    cipher = PiiCipher([("k1", K1)], INDEX)
    one, two = (cipher.encrypt("ada@example.com", field="users.email") for _ in range(2))
    assert one != two
    with pytest.raises(PiiDecryptionError):
        cipher.decrypt(one, field="users.totp_secret")  # moved to another column
    key_id, payload = one.split(":")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    with pytest.raises(PiiDecryptionError):
        cipher.decrypt(f"{key_id}:{flipped}", field="users.email")
    with pytest.raises(PiiDecryptionError):
        cipher.decrypt("k9:" + payload, field="users.email")


def test_key_rotation() -> None:
    old = PiiCipher([("k1", K1)], INDEX)
    envelope = old.encrypt("ada@example.com", field="users.email")
    rotated = PiiCipher([("k2", K2), ("k1", K1)], INDEX)
    assert rotated.decrypt(envelope, field="users.email") == "ada@example.com"
    fresh = rotated.reencrypt(envelope, field="users.email")
    assert fresh.startswith("k2:")
    assert PiiCipher([("k2", K2)], INDEX).decrypt(fresh, field="users.email") == "ada@example.com"


def test_blind_index_is_keyed_and_normalised() -> None:
    cipher = PiiCipher([("k1", K1)], INDEX)
    assert cipher.email_index(" Ada@Example.COM ") == cipher.email_index("ada@example.com")
    assert cipher.email_index("ada@example.com") != cipher.email_index("bob@example.com")
    other_key = PiiCipher([("k1", K1)], os.urandom(32))
    assert other_key.email_index("ada@example.com") != cipher.email_index("ada@example.com")


def test_bad_keys_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        PiiCipher([("k1", b"short")], INDEX)
    with pytest.raises(ConfigurationError):
        PiiCipher([("k1", K1)], b"short")
    with pytest.raises(ConfigurationError):
        parse_key_list("no-separator")
    dev = PiiCipher.from_dev_file(tmp_path / "keys.json")
    again = PiiCipher.from_dev_file(tmp_path / "keys.json")
    assert again.decrypt(dev.encrypt("x", field="f"), field="f") == "x"
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600


NOW = dt.datetime(2026, 3, 2, 12, 0, 15, tzinfo=dt.UTC)


def test_totp_matches_pyotp_and_refuses_replay() -> None:
    secret = mfa.new_totp_secret()
    code = pyotp.TOTP(secret).at(NOW)
    step = mfa.match_totp(secret, code, last_step=None, now=NOW)
    assert step == int(NOW.timestamp()) // 30
    assert mfa.match_totp(secret, code, last_step=step, now=NOW) is None
    # One step of drift either way is accepted, two are not.
    assert mfa.match_totp(
        secret, pyotp.TOTP(secret).at(NOW - dt.timedelta(seconds=30)), last_step=None, now=NOW
    )
    assert mfa.match_totp(
        secret, pyotp.TOTP(secret).at(NOW + dt.timedelta(seconds=30)), last_step=None, now=NOW
    )
    assert (
        mfa.match_totp(
            secret, pyotp.TOTP(secret).at(NOW - dt.timedelta(seconds=61)), last_step=None, now=NOW
        )
        is None
    )
    assert mfa.match_totp(secret, "12345", last_step=None, now=NOW) is None


@settings(max_examples=100)
@given(st.integers(min_value=0, max_value=10**9))
def test_totp_step_codes_agree_with_pyotp(seconds: int) -> None:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    assert mfa.totp_at_step(secret, mfa.current_step(moment)) == pyotp.TOTP(secret).at(moment)


def test_recovery_codes() -> None:
    codes = mfa.generate_recovery_codes()
    assert len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    key = os.urandom(32)
    assert mfa.hash_recovery_code(
        key, codes[0].lower().replace("-", " ")
    ) == mfa.hash_recovery_code(key, codes[0])
    assert mfa.hash_recovery_code(key, codes[0]) != mfa.hash_recovery_code(os.urandom(32), codes[0])
