"""`dpip up`'s supervisor: crashed children restart with growing delays, then it gives up."""

from __future__ import annotations

import itertools
import os
import sys
import time

from dpip.supervisor import Supervisor, restart_delay_s
from foundation import defaults


def test_restart_delay_doubles_up_to_its_cap():
    delays = [restart_delay_s(n) for n in range(1, 12)]
    assert delays[0] == defaults.SUPERVISOR_RESTART_DELAY_S
    assert delays[1] == 2 * delays[0]
    assert delays == sorted(delays)
    assert delays[-1] == defaults.SUPERVISOR_MAX_RESTART_DELAY_S


def test_a_child_that_keeps_crashing_is_restarted_later_each_time_then_stops_all(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(defaults, "SUPERVISOR_RESTART_DELAY_S", 0.2)
    monkeypatch.setattr(defaults, "SUPERVISOR_WATCH_S", 0.02)
    monkeypatch.setattr(defaults, "SUPERVISOR_MAX_RESTARTS", 3)
    starts = tmp_path / "starts"
    crash = f"import time; open({str(starts)!r}, 'a').write(f'{{time.monotonic()}}\\n'); exit(3)"
    supervisor = Supervisor()
    supervisor.add("crasher", [sys.executable, "-c", crash])
    steady = supervisor.add("steady", [sys.executable, "-c", "import time; time.sleep(60)"])

    began = time.monotonic()
    assert supervisor.run(lambda: None) == 0
    assert time.monotonic() - began < 10

    times = [float(line) for line in starts.read_text().split()]
    assert len(times) == 4  # the first start and three restarts, then it gave up
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    for gap, delay in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert gap >= delay
    assert steady.process.returncode is not None  # stopped with everything else


def test_children_do_not_share_the_supervisors_process_group():
    """So a terminal's Ctrl-C reaches only the supervisor, which drives the stop."""
    child = Supervisor().add("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    child.start()
    try:
        assert os.getpgid(child.process.pid) == child.process.pid != os.getpgid(0)
    finally:
        child.process.kill()
        child.process.wait()
