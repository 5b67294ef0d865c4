"""The retention rules as restic's forget applies them, checked as properties
over random snapshot histories, and the policy's settings."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dwfs.errors import InvalidArgument
from dwfs.snapshots._retention import RULES, Policy, changed, format_every, kept, parse_every

HOUR = 3600 * 10**9
START = 1_800_000_000 * 10**9

histories = st.lists(st.integers(0, 24 * 400), min_size=0, max_size=40, unique=True).map(
    lambda hours: [(f"s{h}", START + h * HOUR // 3) for h in hours]
)
counts = st.fixed_dictionaries({rule: st.integers(0, 5) for rule in RULES})


@given(histories, counts)
def test_rules_keep_what_restic_would(snaps: list[tuple[str, int]], keep: dict[str, int]) -> None:
    policy = Policy(3600, keep)
    chosen = kept(snaps, policy)
    names = {name for name, _ in snaps}
    assert chosen <= names
    newest = sorted(snaps, key=lambda s: s[1], reverse=True)
    assert {name for name, _ in newest[: keep["last"]]} <= chosen
    hours: dict[str, str] = {}
    for name, created in newest:  # the newest of each hour, for the newest hours
        hours.setdefault(
            datetime.datetime.fromtimestamp(created // 10**9, datetime.UTC).strftime("%Y%m%d%H"),
            name,
        )
    assert set(list(hours.values())[: keep["hourly"]]) <= chosen
    if not any(keep.values()):
        assert chosen == set()
    more = {rule: count + 1 for rule, count in keep.items()}
    assert chosen <= kept(snaps, Policy(3600, more)), "keeping more never keeps less"


@given(st.integers(1, 10**6), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_every_reads_back(n: int, unit: str) -> None:
    text = f"{n}{unit}"
    if unit == "s" and n < 5:
        with pytest.raises(InvalidArgument):
            parse_every(text)
        return
    seconds = parse_every(text)
    assert parse_every(format_every(seconds)) == seconds


def test_policy_settings_are_checked() -> None:
    for bad in ("1", "fast", "1y", "4s", "-1h"):
        with pytest.raises(InvalidArgument):
            parse_every(bad)
    assert parse_every("off") == 0
    with pytest.raises(InvalidArgument, match="keep none"):
        changed(Policy(), "1h", {})
    with pytest.raises(InvalidArgument, match="0 or more"):
        changed(Policy(), None, {"daily": -1})
    policy = changed(Policy(), "1h", {"hourly": 24, "daily": None})
    assert policy == Policy(3600, {"hourly": 24})
    assert changed(policy, "off", {}) == Policy(0, {"hourly": 24})
    assert Policy.from_json(policy.to_json()) == policy
