"""The built-in checks outlive the pytest session that first imported them: a process that runs several sessions
(pytester's in-process runs, bench/replay.py's pytest.main calls) knows them in every one."""

from __future__ import annotations

from harness.checks import _builtins as checks
from harness.checks import _registry as registry


def test_a_session_that_began_before_the_built_ins_keeps_them_when_it_ends() -> None:
    now = registry.snapshot()
    try:
        registry.restore(({}, False))  # what the first session of a process saw when it began: nothing imported
        assert [registry.lookup(name).origin for name in checks.CHECK_NAMES] == [registry.BUILT_IN] * len(
            checks.CHECK_NAMES
        )
        assert registry.names() == list(checks.CHECK_NAMES)  # in their order
    finally:
        registry.restore(now)
