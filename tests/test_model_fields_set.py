"""Frozen models share one ``__pydantic_fields_set__`` per set of given fields (model.py, to save
memory at 10,000 VMs): sharing must never let one instance's fields set leak into another's,
nor change equality or what ``model_dump`` gives."""

from __future__ import annotations

import copy
import pickle

from poolctl.model import VM, Disk, Host, PowerState

GIVEN = {"ref", "uuid", "name", "vcpus"}


def make(ref: str, **extra) -> VM:
    return VM(ref=ref, uuid=f"uuid-{ref}", name=ref, vcpus=2, **extra)


def test_instances_given_the_same_fields_share_one_set():
    a, b = make("a"), make("b")
    assert a.model_fields_set == GIVEN
    assert a.model_fields_set is b.model_fields_set
    # nested models too, and instances validated from plain data
    d1, d2 = Disk(name="x", size=1), Disk(name="y", size=2)
    assert d1.model_fields_set is d2.model_fields_set == {"name", "size"}
    c = VM.model_validate({"ref": "c", "uuid": "u", "name": "c", "vcpus": 4})
    assert c.model_fields_set is a.model_fields_set


def test_different_fields_different_sets():
    a, b = make("a"), make("b", memory=1024)
    assert a.model_fields_set is not b.model_fields_set
    assert b.model_fields_set == GIVEN | {"memory"}
    assert a.model_fields_set == GIVEN
    # the same names on another class are another shape's business, yet equal sets may be shared
    host = Host(ref="h", name="h")
    assert host.model_fields_set == {"ref", "name"}


def test_model_copy_with_update_leaves_the_original_and_the_shared_set_alone():
    a, b = make("a"), make("b")
    shared = a.model_fields_set
    renamed = a.model_copy(update={"name": "renamed", "power_state": PowerState.RUNNING})
    assert renamed.model_fields_set == GIVEN | {"power_state"}
    assert renamed.model_fields_set is not shared
    assert a.model_fields_set is shared and shared == GIVEN
    assert b.model_fields_set == GIVEN
    assert make("c").model_fields_set == GIVEN  # new instances of the shape are not affected
    assert (a.name, a.power_state) == ("a", PowerState.UNKNOWN)
    assert (renamed.name, renamed.power_state) == ("renamed", PowerState.RUNNING)
    deep = a.model_copy(update={"devices_known": False}, deep=True)
    assert deep.model_fields_set == GIVEN | {"devices_known"} and shared == GIVEN


def test_copies_and_pickles_keep_their_own_fields():
    a = make("a")
    for other in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert other == a and other.model_fields_set == GIVEN
    assert a.model_fields_set == GIVEN


def test_equality_and_dumps_are_unaffected():
    a, twin = make("a"), make("a")
    assert a == twin and hash(a) == hash(twin)
    # equality is by values, not by which fields were given
    explicit = VM(ref="a", uuid="uuid-a", name="a", vcpus=2, memory=0, devices_known=True)
    assert explicit == a and explicit.model_fields_set is not a.model_fields_set
    assert a.model_dump() == explicit.model_dump()
    assert a.model_dump(exclude_unset=True) == {"ref": "a", "uuid": "uuid-a", "name": "a", "vcpus": 2}
    assert explicit.model_dump(exclude_unset=True) == {
        "ref": "a",
        "uuid": "uuid-a",
        "name": "a",
        "vcpus": 2,
        "memory": 0,
        "devices_known": True,
    }
    a.model_copy(update={"memory": 5})
    assert a.model_dump(exclude_unset=True) == twin.model_dump(exclude_unset=True)
    assert a.model_dump() == twin.model_dump() and a == twin


def test_a_callers_fields_set_is_not_adopted_as_the_shared_one():
    # model_construct takes the caller's set; the caller may go on changing it afterwards
    # (a shape no other test builds, so this one is the first of it)
    shape = {"ref", "uuid", "name", "ips", "description", "current_operations"}
    values = {"uuid": "u", "ips": ("127.0.0.1",), "description": "d", "current_operations": ("start",)}
    theirs = set(shape)
    built = VM.model_construct(_fields_set=theirs, ref="c", name="c", **values)
    later = VM(ref="d", name="d", **values)
    theirs.add("memory")
    assert built.model_fields_set == shape and later.model_fields_set == shape
    assert "memory" not in later.model_dump(exclude_unset=True)
    assert built.model_fields_set is later.model_fields_set
