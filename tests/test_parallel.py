"""File jobs on worker threads: results in the order given, small jobs handed over in groups."""

import threading
import time

import pytest

from strongroom.fs.parallel import BATCH_BYTES, BATCH_JOBS, Ordered


def test_results_come_back_in_the_order_given_whatever_order_the_jobs_finish():
    def slow(n, pause):
        time.sleep(pause)
        return n

    with Ordered(workers=2) as jobs:
        expected = []
        for n in range(200):
            if n % 7 == 0:
                jobs.put(n)
            elif n % 5 == 0:
                jobs.submit(slow, n, 0.002)
            else:
                jobs.batch(100, slow, n, 0.001 if n % 3 else 0.0)
            expected.append(n)
        seen = [*jobs.ready()]
        seen += [*jobs.drain()]
    assert seen == expected


def test_small_jobs_are_handed_to_a_worker_in_groups():
    ran_on = {}

    def record(n):
        ran_on[n] = threading.get_ident()
        return n

    with Ordered(workers=2) as jobs:
        for n in range(BATCH_JOBS * 3):
            jobs.batch(10, record, n)
        assert list(jobs.drain()) == list(range(BATCH_JOBS * 3))
    for start in range(0, BATCH_JOBS * 3, BATCH_JOBS):
        assert len({ran_on[n] for n in range(start, start + BATCH_JOBS)}) == 1


def test_a_group_closes_at_its_bytes_so_large_files_are_not_held_back():
    ran = []
    with Ordered(workers=2) as jobs:
        jobs.batch(BATCH_BYTES // 2, ran.append, 0)
        jobs.batch(BATCH_BYTES // 2, ran.append, 1)  # the group now holds its bytes: handed over
        deadline = time.monotonic() + 5
        while len(ran) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ran == [0, 1]
        jobs.batch(1, ran.append, 2)  # a group of one small job waits for more (or the end)
        time.sleep(0.1)
        assert ran == [0, 1]
        list(jobs.drain())
    assert ran == [0, 1, 2]


def test_a_failing_job_in_a_group_raises_when_its_result_is_reached():
    def boom(n):
        if n == 3:
            raise OSError("injected")
        return n

    with pytest.raises(OSError, match="injected"), Ordered(workers=2) as jobs:
        for n in range(6):
            jobs.batch(1, boom, n)
        list(jobs.drain())


def test_without_workers_every_job_runs_at_once_in_the_calling_thread():
    here = threading.get_ident()
    with Ordered(workers=1) as jobs:
        jobs.batch(1, lambda: threading.get_ident())
        assert list(jobs.ready()) == [here]
