"""ml.serving.service.settings: A/B routing (sticky, shares), the A/B file, settings checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.errors import ServingError
from ml.serving.service.settings import CANDIDATE, CONTROL, ServeSettings, bucket, choose_variant


def test_ab_split_is_sticky_and_keeps_the_share_over_10k_keys() -> None:
    keys = [f"user-{i}" for i in range(10_000)]
    first = [choose_variant(k, "exp1", 0.1) for k in keys]
    assert first == [choose_variant(k, "exp1", 0.1) for k in keys]  # sticky
    share = first.count(CANDIDATE) / len(keys)
    assert abs(share - 0.1) < 0.01  # 3.3 standard deviations at n=10k
    # Numeric ids as the service sees them (str of the JSON value), another share.
    ids = [choose_variant(str(i), "exp1", 0.3) for i in range(10_000)]
    assert abs(ids.count(CANDIDATE) / 10_000 - 0.3) < 0.015


def test_ab_split_grows_without_moving_users_and_reshuffles_with_the_salt() -> None:
    keys = [f"u{i}" for i in range(10_000)]
    at10 = {k for k in keys if choose_variant(k, "s", 0.1) == CANDIDATE}
    at20 = {k for k in keys if choose_variant(k, "s", 0.2) == CANDIDATE}
    assert at10 <= at20  # raising the traffic only adds users to the candidate
    other = {k for k in keys if choose_variant(k, "t", 0.1) == CANDIDATE}
    assert len(at10 & other) < 0.3 * len(at10)  # another salt: another sample
    assert choose_variant("u1", "s", 0.0) == CONTROL
    assert 0.0 <= bucket("u1", "s") < 1.0


def test_ab_file_fills_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "ab.yaml"
    path.write_text("candidate: v3\ntraffic: 0.2\nkey: session_id\nsalt: exp-9\nshadow: v4\n")
    s = ServeSettings().with_ab_file(path).check()
    assert (s.candidate, s.traffic, s.key_field, s.salt, s.shadow) == (
        "v3",
        0.2,
        "session_id",
        "exp-9",
        "v4",
    )
    assert ServeSettings(candidate="v3", traffic=0.1).experiment_salt == "ctr_model:v3"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("candidate: v3\n", "'candidate' \\(vN\\) and 'traffic' \\(0..1\\) are required"),
        ("candidate: v3\ntraffic: high\n", "traffic must be a number"),
        ("candidate: v3\ntraffic: 0.1\nshare: 2\n", "unknown key\\(s\\) \\['share'\\]"),
        ("- v3\n", "must be a mapping"),
        ("candidate: v3\ntraffic: 0.1\nkey: [a]\n", "key must be a string"),
    ],
)
def test_bad_ab_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ab.yaml"
    path.write_text(text)
    with pytest.raises(ServingError, match=message):
        ServeSettings().with_ab_file(path)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (ServeSettings(candidate="v3", traffic=1.0), "strictly between 0 and 1"),
        (ServeSettings(traffic=0.2), "--traffic needs --candidate"),
        (ServeSettings(candidate="3"), "invalid version"),
        (ServeSettings(max_batch=0), "max batch must be in"),
        (ServeSettings(model="bad name"), "invalid model name"),
        (ServeSettings(workers=0), "at least 1"),
        (ServeSettings(auth="maybe"), "--auth must be 'required' or 'off'"),
        (ServeSettings(feedback_ttl=0), "--feedback-ttl must be > 0"),
    ],
)
def test_bad_settings_are_refused(settings: ServeSettings, message: str) -> None:
    with pytest.raises(ServingError, match=message):
        settings.check()


def test_settings_round_trip_through_json() -> None:
    s = ServeSettings(candidate="v2", traffic=0.25, shadow="v3", workers=2)
    assert ServeSettings.from_json(s.to_json()) == s
    assert s.torch_threads() >= 1
