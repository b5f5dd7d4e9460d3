"""Diffs and the path-copying patch apply of stream/statepatch.py agree with a standard JSON
Patch library, and never touch the state they start from."""

from __future__ import annotations

import json

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from holobazaar.stream.statepatch import apply_ops, diff

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(0.25, 2)
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "b", "c/d", "e~f", "0"]), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(before=json_values, after=json_values)
def test_diff_and_path_copying_apply_match_jsonpatch_and_leave_the_old_state_alone(
        before, after):
    frozen = json.dumps(before, sort_keys=True)
    expected = json.dumps(after, sort_keys=True)  # strict: 1, 1.0 and true differ
    for ops in (jsonpatch.make_patch(before, after).patch, diff(before, after)):
        assert json.dumps(apply_ops(before, ops), sort_keys=True) == expected
        # What a client does with the same ops (a standard JSON Patch library).
        assert json.dumps(jsonpatch.apply_patch(before, ops), sort_keys=True) == expected
        assert json.dumps(before, sort_keys=True) == frozen
    assert diff(before, after) == [] or json.dumps(before, sort_keys=True) != expected


def test_values_python_finds_equal_but_json_does_not_are_patched() -> None:
    """0 == False and 1 == 1.0 in Python; in JSON (and the state hash) they differ."""
    for before, after in [([False, 0], [False, False]), ({"a": {"n": 1}}, {"a": {"n": 1.0}}),
                          ({"v": [True]}, {"v": [1]})]:
        ops = diff(before, after)
        assert ops, (before, after)
        assert json.dumps(apply_ops(before, ops)) == json.dumps(after)
