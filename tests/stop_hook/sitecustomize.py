"""For the gunicorn tests: a job's own process stops itself (SIGSTOP) at a chosen point.

On ``PYTHONPATH`` for the web servers the tests start. Only a job's process (it has
``$STRONGROOM_JOB_CONFIG``) with ``$STRONGROOM_TEST_STOP_AT`` set to ``kind:text`` installs
the hook: at the first mutation point of that kind whose detail holds ``text`` it writes
its pid into ``$STRONGROOM_TEST_STOP_FILE`` (once per file: a later job goes on) and
stops, so the test finds it there, at that very point, whatever the machine's speed.
"""

import os
import signal

_AT = os.environ.get("STRONGROOM_TEST_STOP_AT")
_FILE = os.environ.get("STRONGROOM_TEST_STOP_FILE")

if _AT and _FILE and os.environ.get("STRONGROOM_JOB_CONFIG"):
    from strongroom.fs import mutations

    _kind, _, _text = _AT.partition(":")

    def _stop_here(kind, detail):
        if kind != _kind or _text not in detail:
            return
        try:
            fd = os.open(_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGSTOP)

    mutations.set_hook(_stop_here)
