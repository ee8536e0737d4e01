"""AES-SIV encryption of PII values: deterministic by default (same bytes on every run), authenticated (a changed
token is flagged, never decrypted to wrong data), one key per entity type, a randomized mode, and
``fmaudit pii decrypt`` telling a wrong key from a damaged token, with file, line and document id."""

from __future__ import annotations

import json

import pytest

from fmaudit.pii.cipher import DamagedToken, WrongKey, decrypt_tokens, encrypt_value
from tests.conftest import run_cli

SECRET = b"test-key-0123456789abcdef"
IBAN = "DE89 3704 0044 0532 0130 00"


def _flip(token: str, at: int) -> str:
    """``token`` with one base64 character of its payload changed to another base64 character."""
    i = token.rindex(":") + 1 + at
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def test_deterministic_round_trip_per_type_keys():
    token = encrypt_value(SECRET, "IBAN_CODE", IBAN)
    assert token == encrypt_value(SECRET, "IBAN_CODE", IBAN)  # reproducible: same value, same bytes
    assert token.startswith("<ENC:IBAN_CODE:") and IBAN.split()[1] not in token
    other_type = encrypt_value(SECRET, "CREDIT_CARD", IBAN)
    assert other_type.split(":")[2] != token.split(":")[2]  # one key per entity type
    text = f"Pay to {token}, not to {other_type}."
    assert decrypt_tokens(text, SECRET) == (f"Pay to {IBAN}, not to {IBAN}.", 2)
    # a token relabelled as another type does not decrypt under that type's key
    with pytest.raises(DamagedToken):
        decrypt_tokens(token.replace("IBAN_CODE", "CREDIT_CARD"), SECRET)


def test_randomized_mode_hides_equality_and_still_decrypts():
    a, b = (encrypt_value(SECRET, "IBAN_CODE", IBAN, "randomized") for _ in range(2))
    assert a != b
    assert decrypt_tokens(a + b, SECRET) == (IBAN + IBAN, 2)


@pytest.mark.parametrize("mode", ["deterministic", "randomized"])
def test_every_changed_character_is_flagged(mode):
    token = encrypt_value(SECRET, "CREDIT_CARD", "4111 1111 1111 1111", mode)
    payload_len = len(token) - token.rindex(":") - 2
    for at in range(7, payload_len):  # after mode byte and key id (5 bytes: 6.7 characters): nonce, tag, text
        with pytest.raises(DamagedToken):
            decrypt_tokens(_flip(token, at), SECRET)
    with pytest.raises(DamagedToken):
        decrypt_tokens(token[:-6] + ">", SECRET)  # cut short
    with pytest.raises(DamagedToken):
        decrypt_tokens(token[:20] + "!" + token[21:], SECRET)  # no longer a whole token


def test_wrong_key_is_told_apart():
    token = encrypt_value(SECRET, "IBAN_CODE", IBAN)
    with pytest.raises(WrongKey, match="key id"):
        decrypt_tokens(token, b"another-key-0123456789abcdef")


def test_decrypt_cli_names_file_line_and_document_and_keeps_going(tmp_path, monkeypatch, capsys):
    good = encrypt_value(SECRET, "IBAN_CODE", IBAN)
    bad = _flip(good, 12)
    foreign = encrypt_value(b"another-key-0123456789abcdef", "IBAN_CODE", IBAN)
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"id": "ok", "text": f"IBAN {good}."}, {"id": "broken", "text": f"IBAN {bad}."},
            {"id": "other", "text": f"IBAN {foreign}."}]
    (data / "00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("FMAUDIT_PII_KEY", SECRET.decode())
    capsys.readouterr()
    assert run_cli("pii", "decrypt", data, "--out", tmp_path / "plain") == 2  # stops at the first failure
    err = capsys.readouterr().err
    assert "00000.jsonl:2: document 'broken': damaged token" in err
    assert run_cli("pii", "decrypt", data, "--out", tmp_path / "plain", "--keep-going") == 1
    captured = capsys.readouterr()
    assert "00000.jsonl:2: document 'broken': damaged token" in captured.err
    assert "00000.jsonl:3: document 'other': token" in captured.err and "another key" in captured.err
    assert "1 damaged, 1 wrong key" in captured.out
    out = [json.loads(line) for line in (tmp_path / "plain" / "00000.jsonl").read_text().splitlines()]
    assert [r["text"] for r in out] == [f"IBAN {IBAN}.", f"IBAN {bad}.", f"IBAN {foreign}."]
    assert run_cli("pii", "decrypt", "--text", f"x {good} y") == 0
    assert capsys.readouterr().out.strip() == f"x {IBAN} y"
