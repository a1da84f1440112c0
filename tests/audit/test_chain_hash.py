"""The chain's hash, written out key by key for speed, is the hash of the canonical JSON."""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from tripcomms.audit.models import chain_hash
from tripcomms.audit.operations import _iso_utc, _loaded

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def by_the_book(prev, seq, at, actor_id, actor, action, stype, sid, data) -> str:
    """The definition: SHA-256 over the previous hash and the sorted, compact JSON."""
    payload = json.dumps(
        {
            "seq": seq,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor_id": actor_id,
            "actor": actor,
            "action": action,
            "subject_type": stype,
            "subject_id": sid,
            "data": data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256((prev + payload).encode()).hexdigest()


@settings(max_examples=300, deadline=None)
@given(
    seq=st.integers(1, 10**12),
    at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    ),
    actor_id=st.none() | st.integers(1, 10**9),
    actor=TEXT,
    action=TEXT,
    stype=st.none() | TEXT,
    sid=st.none() | TEXT,
    data=st.dictionaries(TEXT, JSON, max_size=4),
)
def test_the_fast_hash_is_the_canonical_hash(seq, at, actor_id, actor, action, stype, sid, data):
    prev = "a" * 64
    expected = by_the_book(prev, seq, at, actor_id, actor, action, stype, sid, data)
    assert chain_hash(prev, seq, at, actor_id, actor, action, stype, sid, data) == expected


def test_stored_times_are_read_back_as_iso_8601_utc():
    moment = datetime(2026, 3, 29, 0, 59, 59, 123456, tzinfo=UTC)
    expected = "2026-03-29T00:59:59.123456+00:00"
    assert _iso_utc("2026-03-29 00:59:59.123456") == expected
    assert _iso_utc("2026-03-29 00:59:59") == "2026-03-29T00:59:59.000000+00:00"
    assert _iso_utc(moment) == expected
    assert _iso_utc(moment.astimezone(timezone(timedelta(hours=1)))) == expected
    assert _iso_utc(moment.replace(tzinfo=None)) == expected
    assert _loaded('{"a": 1}') == {"a": 1} and _loaded({"a": 1}) == {"a": 1}
    assert _loaded(None) == {}
