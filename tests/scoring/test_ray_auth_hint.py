"""A Ray connection refused for want of token authentication says what to set. Ray's own error often reads
only 'Failed to connect' (the cause is in warnings above it), so a token lying on this machine while
RAY_AUTH_MODE is not 'token' is named too; with nothing pointing at tokens, nothing is added."""

from __future__ import annotations

from pathlib import Path

from scoring.engines.ray_engine import auth_hint

FAILED = "Failed to connect to Ray cluster at 192.0.2.2:6391"


def test_an_error_that_names_authentication_says_to_set_the_token_mode(tmp_path: Path) -> None:
    hint = auth_hint("InvalidAuthToken: token missing", {}, tmp_path)
    assert "set RAY_AUTH_MODE=token and its token" in hint and "`ray start --address`" in hint


def test_a_token_on_this_machine_without_the_token_mode_is_named(tmp_path: Path) -> None:
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("secret")
    assert "A Ray token is on this machine" in auth_hint(FAILED, {}, tmp_path)
    assert auth_hint(FAILED, {"RAY_AUTH_MODE": "token"}, tmp_path) == ""  # already set: another cause
    assert "A Ray token is on this machine" in auth_hint(FAILED, {"RAY_AUTH_TOKEN": "x"}, tmp_path / "elsewhere")


def test_nothing_is_added_when_nothing_points_at_tokens(tmp_path: Path) -> None:
    assert auth_hint(FAILED, {}, tmp_path) == ""
