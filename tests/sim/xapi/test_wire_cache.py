"""get_all_records' cached XML: byte for byte what marshalling the records gives, cold, warm and
after changes (over HTTP too, where the SDK must read the changed record)."""

from __future__ import annotations

from poolctl.sim.xapi import wire
from poolctl.sim.xapi.db import CLASSES

from .conftest import vm_named


def _plain(records: wire.Records) -> dict:
    return {ref: dict(rec) for ref, rec in records.items()}


def test_cached_records_marshal_exactly_like_plain_ones(sim):
    db = sim.db
    for cls in CLASSES:
        first = db.all_records(cls)
        assert type(first) is wire.Records
        assert wire.xml_success(first) == wire.xml_success(_plain(first))  # cold: fills the cache
        warm = db.all_records(cls)
        assert wire.xml_success(warm) == wire.xml_success(_plain(warm))  # warm: from the cache
        assert wire.json_dumps(warm) == wire.json_dumps(_plain(warm))
    assert len(db.xml_cache) > 50


def test_a_changed_record_is_marshalled_again(sim, api):
    web1 = vm_named(api, "web-01")
    before = api.VM.get_all_records()[web1]
    api.VM.set_name_description(web1, "now with <markup> & more")
    api.VM.hard_shutdown(web1)
    after = api.VM.get_all_records()[web1]
    assert after["name_description"] == "now with <markup> & more" and after["power_state"] == "Halted"
    assert before["power_state"] == "Running"
    records = sim.db.all_records("VM")
    assert wire.xml_success(records) == wire.xml_success(_plain(records))


def test_a_destroyed_record_leaves_the_cache(sim):
    db = sim.db
    wire.xml_success(db.all_records("VIF"))
    ref = next(iter(db.tables["VIF"]))
    assert ref in db.xml_cache
    db.destroy("VIF", ref)
    assert ref not in db.xml_cache and ref not in db.all_records("VIF")
