"""poolctl's own per-host maintenance record (for KVM, whose hosts have no disabled flag)."""

import json

import pytest

from poolctl.maintenance import HostMark, HostMarks, MarkError

UUID = "6f1d3c2e-0000-4000-8000-000000000001"


def test_a_host_without_a_record_is_enabled(tmp_path):
    assert HostMarks(tmp_path).get(UUID) == HostMark()


def test_disable_then_enable_round_trips_and_enable_hands_back_the_evacuated_list(tmp_path):
    marks = HostMarks(tmp_path / "hosts")
    mark = marks.disable(UUID, maintenance=True, evacuated=("vm-a", "vm-b"), by="poolctl evacuate")
    assert mark.disabled and mark.maintenance and mark.since
    again = HostMarks(tmp_path / "hosts").get(UUID)  # another process reads the same record
    assert again == mark
    old = marks.enable(UUID)
    assert old.evacuated == ("vm-a", "vm-b")
    assert marks.get(UUID) == HostMark()
    assert list((tmp_path / "hosts").iterdir()) == []  # nothing left behind, no temp file


def test_disabling_again_keeps_the_first_time_and_the_evacuated_list(tmp_path):
    marks = HostMarks(tmp_path)
    first = marks.disable(UUID, maintenance=True, evacuated=("vm-a",))
    second = marks.disable(UUID)
    assert second.since == first.since and second.evacuated == ("vm-a",) and second.maintenance


def test_a_record_is_written_whole_and_private(tmp_path):
    marks = HostMarks(tmp_path / "hosts")
    marks.disable(UUID)
    path = marks.path(UUID)
    assert json.loads(path.read_text())["disabled"] is True
    assert (tmp_path / "hosts").stat().st_mode & 0o077 == 0


def test_a_corrupt_record_names_its_file(tmp_path):
    marks = HostMarks(tmp_path)
    marks.path(UUID).write_text("{not json")
    with pytest.raises(MarkError, match=str(marks.path(UUID))):
        marks.get(UUID)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a/b", "", "x" * 200])
def test_a_uuid_from_the_hypervisor_never_escapes_the_folder(tmp_path, bad):
    with pytest.raises(MarkError, match="cannot name a state file"):
        HostMarks(tmp_path).path(bad)
