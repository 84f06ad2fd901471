"""The migrate dialog's host list keeps the user's highlight while verdicts come in."""

from __future__ import annotations

from textual.app import App, ComposeResult

from poolctl.migration.cross_pool import Destination
from poolctl.model import Host, MigrationCheck
from poolctl.tui.widgets.destination_list import DestinationList

HOSTS = [Destination(Host(ref=f"h{i}", name=f"xcp-lab-{i}"), ()) for i in (1, 2, 3)]


class ListApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DestinationList(HOSTS, id="hosts")


def ok(dest: Destination) -> MigrationCheck:
    return MigrationCheck(vm="vm", host=dest.host.ref)


def refused(dest: Destination) -> MigrationCheck:
    return MigrationCheck(vm="vm", host=dest.host.ref, problems=("not enough free memory",))


async def test_a_new_verdict_for_the_highlighted_host_keeps_the_highlight_on_it():
    app = ListApp()
    async with app.run_test() as pilot:
        hosts = app.query_one(DestinationList)
        for d in HOSTS:
            hosts.set_verdict(d, ok(d), True)
        hosts.follow({d.key: ok(d) for d in HOSTS})
        await pilot.pause()
        assert hosts.highlighted == 0 and not hosts.user_moved
        await pilot.press("down")
        assert hosts.highlighted == 1 and hosts.user_moved
        # a re-check of the host under the highlight (another SR picked for it) answers: Textual's
        # enable_option would move the highlight on to the next host
        hosts.set_verdict(HOSTS[1], ok(HOSTS[1]), True)
        hosts.follow({d.key: ok(d) for d in HOSTS})
        await pilot.pause()
        assert hosts.highlighted == 1


async def test_until_the_user_moves_the_highlight_follows_the_first_usable_host():
    app = ListApp()
    async with app.run_test() as pilot:
        hosts = app.query_one(DestinationList)
        third = HOSTS[2]
        hosts.set_verdict(third, ok(third), True)
        hosts.follow({third.key: ok(third)})
        await pilot.pause()
        assert hosts.highlighted == 2  # the only usable one so far
        checks = {d.key: ok(d) for d in HOSTS[1:]}
        hosts.set_verdict(HOSTS[0], refused(HOSTS[0]), False)
        hosts.set_verdict(HOSTS[1], ok(HOSTS[1]), True)
        hosts.follow(checks)
        await pilot.pause()
        assert hosts.highlighted == 1 and not hosts.user_moved  # xcp-lab-2 answered: first in list order
