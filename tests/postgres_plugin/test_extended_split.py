"""The parts of a Bind that cache keys are built from, cut without decoding values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from wirecache_postgres import messages as m
from wirecache_postgres.extended import result_formats, split_bind

formats = st.lists(st.sampled_from([0, 1]), max_size=4)
values = st.lists(st.one_of(st.none(), st.binary(max_size=40)), max_size=5)


@given(formats, values, formats)
def test_a_describe_of_the_portal_depends_on_the_result_formats_only(fmts, vals, results):
    _, _, rest = split_bind(m.bind("p", "s", fmts, vals, results)[5:])
    expected = len(results).to_bytes(2, "big") + b"".join(f.to_bytes(2, "big") for f in results)
    assert result_formats(rest) == expected


@given(st.binary(max_size=60))
def test_a_malformed_bind_is_kept_whole(rest):
    # (the origin refuses such a Bind; the key just must not collide with a valid one)
    out = result_formats(rest)
    assert out == rest or rest.endswith(out)
