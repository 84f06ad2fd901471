"""Several pools loaded in parallel for a command, each failure reported the same way.

Each pool is a few network round trips: loading them one after the other would add those up.
A pool that fails is named on stderr and the others are still served; the exit code says the
worst that happened (a refused login over any other failure).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from poolctl.backends.base import AuthenticationError, Backend, BackendError
from poolctl.config import ConfigError, PoolConfig
from poolctl.errors import ExitCode, describe
from poolctl.loading import close_quietly, load_pool
from poolctl.model import Inventory
from poolctl.safe_text import quoted

MAX_PARALLEL = 8


@dataclass(frozen=True)
class Loaded:
    config: PoolConfig
    backend: Backend  # connected until the ``loaded_pools`` block ends
    inventory: Inventory


@contextmanager
def loaded_pools(pools: Sequence[PoolConfig], err: TextIO) -> Iterator[tuple[list[Loaded], ExitCode]]:
    """The pools that loaded (their full inventory), in config order, and the exit code for
    those that did not; every backend is closed when the block ends."""
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(pools)))) as executor:
        futures = [executor.submit(load_pool, p, full=True) for p in pools]
        try:
            yield _collect(pools, futures, err)
        finally:
            for future in futures:
                if future.done():
                    executor.submit(_close_result, future)  # in parallel: each is a round trip
                else:  # not collected (Ctrl-C while waiting): closed when its load ends
                    future.add_done_callback(_close_result)


def _collect(
    pools: Sequence[PoolConfig], futures: list[Future[tuple[Backend, Inventory]]], err: TextIO
) -> tuple[list[Loaded], ExitCode]:
    loaded: list[Loaded] = []
    code = ExitCode.OK
    for pool, future in zip(pools, futures):
        try:
            backend, inventory = future.result()
        except AuthenticationError as exc:
            _report(pool, exc, err)
            code = ExitCode.AUTH
        except (BackendError, ConfigError, OSError) as exc:
            _report(pool, exc, err)
            code = max(code, ExitCode.FAILED)
        else:
            for problem in backend.host_problems():
                print(f"poolctl: warning: pool {pool.name!r} ({pool.backend}): {problem}", file=err)
            loaded.append(Loaded(pool, backend, inventory))
    return loaded, code


def _report(pool: PoolConfig, exc: BaseException, err: TextIO) -> None:
    print(f"poolctl: {pool_error(pool, exc)}", file=err)


def pool_error(pool: PoolConfig, exc: BaseException) -> str:
    """``pool 'lab' (xen): <what went wrong>``: a backend's words name the pool already, and
    saying it twice ("pool 'lab' (xen): pool 'lab': …") reads as two pools."""
    text = describe(exc)
    for named in (f"pool {pool.name!r}: ", f"pool {quoted(pool.name)}: "):
        if text.startswith(named):
            text = text[len(named) :]
            break
    return f"pool {quoted(pool.name)} ({pool.backend}): {text}"


def _close_result(future: Future[tuple[Backend, Inventory]]) -> None:
    if not future.cancelled() and future.exception() is None:
        close_quietly(future.result()[0])
