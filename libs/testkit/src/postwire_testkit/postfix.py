"""Private Postfix instances for tests and benchmarks, each from its own directory.

:class:`PostfixRelayClient` is the kind of client that submits to postwire in production
(an application server's local Postfix with a smart host):

    relay = PostfixRelayClient(workdir, listen_port, "127.0.0.1", submission_port,
                               "acct.user", "api key")
    with relay:                    # start() ... stop()
        smtplib.SMTP("127.0.0.1", listen_port).sendmail(...)  # no auth, from loopback
        relay.wait_empty(30)       # every message handed over (or TimeoutError + log)

It accepts mail on ``127.0.0.1:listen_port`` from loopback without authentication and
relays everything to ``[relay_host]:relay_port`` over STARTTLS (required, certificate not
verified: ``smtp_tls_security_level = encrypt``) with SASL AUTH (Cyrus client; PLAIN or
LOGIN, whatever the server offers, or ``sasl_mechanisms`` to pick). :class:`PrivatePostfix`
is the same instance with main.cf settings of the caller's (``bench/smtp.py`` runs the
reference MTA with it).

Everything lives under ``workdir`` (``conf/`` the config_directory, ``queue/``,
``data/``, ``maillog``): the system's /etc/postfix/main.cf and master.cf are not read
or written (only the package's own files there, postfix-files and dynamicmaps.cf), so
this runs next to ``../shared/bench/postfix_relay.sh``, which rewrites them, and next
to other instances. What that takes, found by experiment on Postfix 3.7 (Debian 12):

- ``postfix -c DIR`` run by root needs no ``alternate_config_directories`` in the
  default main.cf (that check applies only to the set-gid commands, postdrop and
  postqueue, run by other users); so this needs root, as ``postfix`` itself does.
- master.cf must have the ``postlog`` service for ``maillog_file``, and
  ``maillog_file_prefixes`` must allow the workdir.
- ``postfix check`` creates queue_directory's subdirectories and data_directory with
  the right owners, provided data_directory does not exist yet.
- mail_owner (``postfix``) must be able to traverse to the workdir: master opens its lock
  file as that user, and a directory from ``tempfile.mkdtemp()`` (0700) refuses it. The
  workdir is made 0755 and its parents inside the temp directory get o+x.
- Messages are counted from the queue directories (not ``postqueue -p``, which is set-gid
  and needs the default main.cf to list this instance when run by others).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

INSTALL_HINT = "run scripts/install-mta-tools (as root) to install Postfix"
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

# Every service a relaying instance uses, none chrooted (the chroot would need copies of
# /etc files under the queue directory). The smtpd listener is added per instance.
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixMissing(RuntimeError):
    """Postfix is not installed, or cannot run here."""


def postfix_command() -> str:
    """The ``postfix`` command, or :class:`PostfixMissing` saying how to install it."""
    path = os.environ.get("PATH", os.defpath) + os.pathsep + "/usr/sbin:/sbin"
    found = shutil.which("postfix", path=path)
    if found is None:
        raise PostfixMissing(f"postfix is not installed: {INSTALL_HINT}")
    return found


class PrivatePostfix:
    """A Postfix instance of its own under ``workdir``: smtpd on ``127.0.0.1:listen_port``
    accepting mail from loopback without authentication, and ``settings`` (main.cf
    parameters) over the defaults here, which deliver nothing locally."""

    role = "private"

    def __init__(
        self, workdir: Path | str, listen_port: int, settings: Mapping[str, str] | None = None
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.listen_port = listen_port
        self.settings = dict(settings or {})
        self.config_dir = self.workdir / "conf"
        self.queue_dir = self.workdir / "queue"
        self.data_dir = self.workdir / "data"
        self.maillog = self.workdir / "maillog"
        self._postfix: str | None = None

    def instance_settings(self) -> dict[str, str]:
        """What a kind of instance adds to the defaults (``settings`` still win)."""
        return {}

    def write_files(self) -> None:
        """Files of the configuration directory besides main.cf and master.cf."""

    def main_cf(self) -> str:
        settings = {
            "compatibility_level": "3.6",
            "config_directory": str(self.config_dir),
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "syslog_name": f"postfix-{self.role}-{self.listen_port}",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.workdir),
            "myhostname": f"{self.role}.postwire.test",
            "myorigin": "$myhostname",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:local delivery disabled",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            # In: anyone on loopback, no auth, no TLS.
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_recipient_restrictions": "permit_mynetworks, reject",
            "smtpd_tls_security_level": "none",
            "smtpd_peername_lookup": "no",
            # A relay that was down or refused is tried again within seconds, not minutes.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "10s",
            **self.instance_settings(),
            **self.settings,
        }
        return "".join(f"{name} = {value}\n" for name, value in settings.items())

    def master_cf(self) -> str:
        listener = f"127.0.0.1:{self.listen_port} inet n - n - - smtpd\n"
        return listener + MASTER_CF

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self._postfix is not None
        done = subprocess.run(  # noqa: S603 - our own arguments
            [self._postfix, "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"postfix {' '.join(args)} failed ({done.returncode}): "
                f"{done.stdout}{done.stderr}\n{self.log_tail()}"
            )
        return done

    def _reachable_by_mail_owner(self) -> None:
        """Make the workdir and its parents inside the temp directory traversable by
        mail_owner; refuse with a clear message where that is not ours to change."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        temp = Path(tempfile.gettempdir()).resolve()
        for parent in self.workdir.parents:
            mode = parent.stat()
            if mode.st_mode & stat.S_IXOTH:
                continue
            if parent.is_relative_to(temp) and parent != temp and mode.st_uid == os.geteuid():
                parent.chmod(stat.S_IMODE(mode.st_mode) | stat.S_IXOTH)
                continue
            raise RuntimeError(
                f"Postfix's mail_owner cannot reach {self.workdir}: {parent} is "
                f"{stat.filemode(mode.st_mode)}; use a workdir under {temp}"
            )

    def start(self, timeout: float = 30.0) -> Self:
        self._postfix = postfix_command()
        if os.geteuid() != 0:
            raise RuntimeError("a private Postfix instance needs root, as `postfix start` does")
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            raise PostfixMissing(f"no 'postfix' user: {INSTALL_HINT}") from None
        self._reachable_by_mail_owner()
        self.config_dir.mkdir(exist_ok=True)
        self.queue_dir.mkdir(exist_ok=True)
        self.config_dir.joinpath("main.cf").write_text(self.main_cf())
        self.config_dir.joinpath("master.cf").write_text(self.master_cf())
        self.write_files()
        self.maillog.touch()
        self._run("check")  # creates the queue's subdirectories and data_directory
        self._run("start")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.listen_port), 0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"Postfix is not listening on {self.listen_port}:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)

    def master_pid(self) -> int | None:
        try:
            return int(self.queue_dir.joinpath("pid", "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.master_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout: float = 15.0) -> None:
        """``postfix stop`` and wait for the master to exit (killed if it does not)."""
        if self._postfix is None or not self.running():
            return
        pid = self.master_pid()
        self._run("stop", check=False)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def queued(self) -> int:
        """Messages not handed over yet (maildrop, incoming, active, deferred, hold)."""
        count = 0
        for name in QUEUES:
            for _root, _dirs, files in os.walk(self.queue_dir / name):
                count += len(files)
        return count

    def queue_empty(self) -> bool:
        return self.queued() == 0

    def flush(self) -> None:
        """Try every deferred message again now (``postfix flush``)."""
        self._run("flush")

    def wait_empty(self, timeout: float = 30.0) -> None:
        """Wait until every message has left the queue; TimeoutError with the log if not."""
        deadline = time.monotonic() + timeout
        while not self.queue_empty():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.queued()} message(s) still in Postfix's queue after {timeout} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def log_text(self) -> str:
        """Everything this instance logged (its maillog_file)."""
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class PostfixRelayClient(PrivatePostfix):
    """A private Postfix that relays everything it is given on ``127.0.0.1:listen_port``
    to ``[relay_host]:relay_port`` with STARTTLS (required, not verified) and SASL."""

    role = "relay"

    def __init__(
        self,
        workdir: Path | str,
        listen_port: int,
        relay_host: str,
        relay_port: int,
        sasl_user: str,
        sasl_password: str,
        *,
        sasl_mechanisms: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """``sasl_mechanisms``: e.g. ``"login"`` to use only that one of the server's
        (``smtp_sasl_mechanism_filter``). ``extra``: more main.cf settings, last wins."""
        if ":" in sasl_user or "\n" in sasl_user + sasl_password:
            raise ValueError("SASL user names cannot contain ':' or newlines in Postfix maps")
        super().__init__(workdir, listen_port, extra)
        self.relay_host = relay_host
        self.relay_port = relay_port
        self.sasl_user = sasl_user
        self.sasl_password = sasl_password
        self.sasl_mechanisms = sasl_mechanisms

    @property
    def relayhost(self) -> str:
        return f"[{self.relay_host}]:{self.relay_port}"

    @property
    def password_map(self) -> Path:
        return self.config_dir / "sasl_passwd"

    def instance_settings(self) -> dict[str, str]:
        settings = {
            "relayhost": self.relayhost,
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_loglevel": "1",
            "smtp_sasl_auth_enable": "yes",
            "smtp_sasl_password_maps": f"texthash:{self.password_map}",
            "smtp_sasl_security_options": "noanonymous",
            "smtp_sasl_tls_security_options": "noanonymous",
        }
        if self.sasl_mechanisms:
            settings["smtp_sasl_mechanism_filter"] = self.sasl_mechanisms
        return settings

    def write_files(self) -> None:
        # texthash: read when smtp starts (as root, before it drops privileges); the key
        # is the relayhost exactly as written in main.cf.
        self.password_map.touch(mode=0o600)
        self.password_map.write_text(f"{self.relayhost} {self.sasl_user}:{self.sasl_password}\n")
