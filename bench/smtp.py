"""SMTP submission: how fast postwire accepts mail over SMTP, next to Postfix's smtpd.

    .venv/bin/python bench/smtp.py                      # 2 KB and 50 KB, 2000 messages a run
    .venv/bin/python bench/smtp.py --messages 500 --mode fresh --sizes 2048

Needs what ``bench/e2e.py`` needs (RabbitMQ, PostgreSQL, ``.venv``) plus Postfix
(``scripts/install-mta-tools``), and root (Postfix runs as a private instance from a
temporary directory: ``postwire_testkit.postfix``; /etc/postfix is left alone).

What runs, on this machine, for each message size:

- postwire ``run all`` (a throwaway database and vhost, ``POSTWIRE_SMTP_PORT`` with a
  self-signed certificate, an account with a verified domain and sender made through the
  API as in ``e2e.py``), delivering to the loopback DNS and SMTP sink of ``e2e.py``;
- Postfix's smtpd configured as ``../shared/bench/postfix_relay.sh`` configures it
  (loopback, ``permit_mynetworks``, fsync'd queue, relaying to ``smtp-sink``), plus
  ``smtpd_tls_security_level = may`` with the same certificate.

The figure is **accepted msgs/s**: messages answered ``250`` after DATA per second, first
connection to last reply. postwire answers 250 after the message is committed in
PostgreSQL; Postfix after its queue file is fsync'd. Both keep delivering to their sink in
the background meanwhile, and each run waits until the sink has everything before the
next one starts.

**The load generator.** Postfix's ``smtp-source`` (the tool ``postfix_relay.sh`` uses)
cannot log in: it has no AUTH and no STARTTLS (``man smtp-source``: options for sessions,
sizes, counts, HELO name, addresses, LMTP; nothing else), and postwire refuses MAIL
without AUTH (``554 ... Must authenticate``), as it must: no bench-only way around
authentication exists or is added. Putting a Postfix relay client in front of postwire
would measure that Postfix. So this file has its own generator, and both servers get the
same one:

- ``--sessions`` (20, as ``smtp-source -s 20``) concurrent sessions, each message:
  connect, EHLO, STARTTLS (certificate not verified), EHLO, [AUTH PLAIN], MAIL, RCPT (one
  recipient), DATA, QUIT; one command at a time (no PIPELINING, like smtp-source).
  ``--mode fresh`` opens a connection per message as smtp-source does (every message pays
  a TCP connection, a TLS handshake and, for postwire, an AUTH); ``--mode reused`` logs in
  once per session and sends all of that session's messages over it; ``both`` (default)
  runs each.
- A session is a thread on a blocking socket (``ssl`` does the TLS in C, without the
  GIL), not an asyncio task: on this 2-vCPU machine, against the same Postfix, 2000 2 KB
  messages, fresh connections, the threads sent 453 msgs/s plain and 318 with STARTTLS
  where an asyncio version sent 345 and 254 (smtp-source: 439-527 plain). The generator
  still shares the cores with the servers; ``postfix_plain`` next to
  ``postfix_smtp_source`` below says how much it costs.
- postwire gets AUTH PLAIN with the account's API user and key; **Postfix gets no AUTH**
  (a permit_mynetworks client, as in postfix_relay.sh: Postfix's SASL server needs
  Cyrus saslauthd or Dovecot, which this machine does not run). Postwire's AUTH is one
  more round trip and a SHA-256 lookup of the key per session; it is counted against
  postwire.
- ``ratio`` = postwire / Postfix, both driven by this generator with STARTTLS.

Two more Postfix figures are printed as references: ``postfix_smtp_source`` (Postfix's
own C generator, ``smtp-source -s 20 -l SIZE -m N``: plain text, fresh connections, as
postfix_relay.sh runs it) and ``postfix_plain`` (this generator in the same mode, plain
text). The message is ``SIZE`` bytes of text after seven header fields (From, To,
Subject, Date, a unique Message-ID, MIME-Version, Content-Type), as smtp-source's
``-l SIZE`` is payload length. Postfix runs with its defaults otherwise, so its smtpd
slows acceptance down when its queue manager falls behind (``in_flow_delay``, 1 s).

Each run also checks for pytest processes and marks its figures ``noisy=pytest`` when one
ran meanwhile: tests on the same two cores make them meaningless.

Printed, one line per size and mode::

    smtp_accept size=2048 mode=fresh postwire_msgs_per_s=… postfix_msgs_per_s=… ratio=…
        postfix_plain_msgs_per_s=… postfix_smtp_source_msgs_per_s=…
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path

from e2e import ADMIN_TOKEN, LINE, env_for, migrate

from postwire_testkit.api import Tenant, Urls
from postwire_testkit.dns import LoopbackDns
from postwire_testkit.infra import temp_database, temp_vhost, unique_name
from postwire_testkit.platform import PlatformProcess
from postwire_testkit.postfix import PrivatePostfix, postfix_command
from postwire_testkit.sink import SinkProcess
from postwire_testkit.smtp import free_port
from postwire_testkit.tls import self_signed

SENDER_DOMAIN = "shop.example"
RECIPIENT_DOMAIN = "bench.example"
SIZES = (2048, 51200)


class SmtpError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """Where the generator sends, and how it talks to it."""

    name: str
    port: int
    sender: str
    starttls: bool = True
    login: tuple[str, str] | None = None  # AUTH PLAIN user, password


@dataclass
class Result:
    accepted: int = 0
    failed: int = 0
    replies: list[str] = field(default_factory=list)  # the first refusals, for the report
    seconds: float = 0.0
    waits: list[float] = field(default_factory=list)  # end of DATA -> 250, per message

    def wait_ms(self, q: float) -> float:
        if not self.waits:
            return float("nan")
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0


def client_context() -> ssl.SSLContext:
    """TLS as a submission client with a self-signed server: encrypted, not verified."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def body_of(size: int) -> bytes:
    """``size`` bytes of text in CRLF lines (none starts with a dot)."""
    line = LINE.rstrip("\n").encode() + b"\r\n"
    body = line * (size // len(line) + 1)
    return body[: size - 2] + b"\r\n" if size >= 2 else b""


def message(sender: str, rcpt: str, n: int, body: bytes) -> bytes:
    headers = (
        f"From: Bench <{sender}>\r\nTo: <{rcpt}>\r\nSubject: smtp bench {n}\r\n"
        f"Date: {formatdate(localtime=True)}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@{sender.rpartition('@')[2]}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    return headers.encode() + body + b".\r\n"


class Session:
    """One SMTP connection on a blocking socket, one command at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    @classmethod
    def open(cls, target: Target, context: ssl.SSLContext) -> Session:
        sock = socket.create_connection(("127.0.0.1", target.port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = cls(sock)
        try:
            session.expect(220)
            session.command(b"EHLO bench.test", 250)
            if target.starttls:
                session.command(b"STARTTLS", 220)
                session.file.close()  # nothing is buffered: the server waits for the handshake
                session.sock = context.wrap_socket(sock)
                session.file = session.sock.makefile("rb")
                session.command(b"EHLO bench.test", 250)
            if target.login:
                user, password = target.login
                token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
                session.command(f"AUTH PLAIN {token}".encode(), 235)
        except BaseException:
            session.abort()
            raise
        return session

    def expect(self, code: int) -> bytes:
        while True:
            line = self.file.readline()
            if not line:
                raise SmtpError(f"connection closed waiting for {code}")
            if line[3:4] != b"-":
                break
        if line[:3] != str(code).encode():
            raise SmtpError(line.decode(errors="replace").strip())
        return line

    def command(self, line: bytes, code: int) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.expect(code)

    def send(self, sender: str, rcpt: str, data: bytes) -> float:
        """Send one message; the seconds from its last byte sent to the 250."""
        self.command(f"MAIL FROM:<{sender}>".encode(), 250)
        self.command(f"RCPT TO:<{rcpt}>".encode(), 250)
        self.command(b"DATA", 354)
        self.sock.sendall(data)
        sent = time.perf_counter()
        self.expect(250)
        return time.perf_counter() - sent

    def close(self) -> None:
        with contextlib.suppress(SmtpError, OSError):
            self.command(b"QUIT", 221)
        self.abort()

    def abort(self) -> None:
        self.file.close()
        self.sock.close()


def generate(target: Target, total: int, size: int, sessions: int, reuse: bool) -> Result:
    """Send ``total`` messages of ``size`` payload bytes over ``sessions`` concurrent
    sessions (a thread each): a connection per message, or (``reuse``) one per session."""
    context = client_context()
    body = body_of(size)
    result = Result()
    numbers = iter(range(total))
    lock = threading.Lock()

    def take() -> int | None:
        with lock:
            return next(numbers, None)

    def worker() -> None:
        session: Session | None = None
        try:
            while (n := take()) is not None:
                rcpt = f"r{n}@{RECIPIENT_DOMAIN}"
                data = message(target.sender, rcpt, n, body)
                try:
                    if session is None:
                        session = Session.open(target, context)
                    waited = session.send(target.sender, rcpt, data)
                except (SmtpError, OSError) as error:  # ssl.SSLError is an OSError
                    with lock:
                        result.failed += 1
                        if len(result.replies) < 5:
                            result.replies.append(f"{type(error).__name__}: {error}")
                    if session is not None:
                        session.abort()
                    session = None
                    continue
                with lock:
                    result.accepted += 1
                    result.waits.append(waited)
                if not reuse:
                    session.close()
                    session = None
        finally:
            if session is not None:
                session.close()

    threads = [threading.Thread(target=worker) for _ in range(sessions)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def smtp_source(port: int, total: int, size: int, sessions: int, sender: str) -> Result:
    """Postfix's own generator: plain SMTP, a connection per message."""
    tool = shutil.which("smtp-source", path=os.environ["PATH"] + ":/usr/sbin")
    assert tool, "smtp-source is missing: run scripts/install-mta-tools"
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [tool, "-s", str(sessions), "-l", str(size), "-m", str(total), "-M", "bench.test",
         "-f", sender, "-t", f"r@{RECIPIENT_DOMAIN}", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return Result(0, total, [done.stderr.strip()[:300]], seconds)
    return Result(total, 0, [], seconds)


def fs_type(path: Path) -> str:
    """The file system type ``path`` is on (from /proc/mounts: the longest mount prefix)."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        _dev, mount, fstype, *_ = line.split()
        if str(path).startswith(mount.rstrip("/") + "/") and len(mount) >= len(best):
            best, kind = mount, fstype
    return kind


def pytest_running() -> bool:
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            try:
                if b"pytest" in (entry / "cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


class PytestWatch:
    """Looks for pytest processes every half second while the benchmark runs: a test run
    on the same cores makes the figures meaningless, and each run says if one was seen."""

    def __init__(self) -> None:
        self._seen = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            if pytest_running():
                self._seen = True

    def seen(self) -> bool:
        """Whether pytest ran since the last call."""
        seen, self._seen = self._seen or pytest_running(), False
        return seen

    def stop(self) -> None:
        self._stop.set()


class PostfixSide:
    """Postfix as postfix_relay.sh sets it up, as a private instance, plus STARTTLS."""

    def __init__(self, workdir: Path, cert: Path, key: Path) -> None:
        postfix_command()  # fails with how to install it
        self.port = free_port()
        self.sink_port = free_port()
        sink = shutil.which("smtp-sink", path=os.environ["PATH"] + ":/usr/sbin")
        assert sink, "smtp-sink is missing: run scripts/install-mta-tools"
        self._sink = subprocess.Popen(  # noqa: S603
            [sink, "-u", "nobody", f"127.0.0.1:{self.sink_port}", "1024"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.instance = PrivatePostfix(
            workdir / "postfix",
            self.port,
            {
                "myhostname": "bench.localdomain",
                "relayhost": f"[127.0.0.1]:{self.sink_port}",
                "smtp_tls_security_level": "none",
                "smtpd_tls_security_level": "may",
                "smtpd_tls_chain_files": f"{key}, {cert}",
            },
        )
        self.instance.start()
        self.version = subprocess.run(  # noqa: S603
            [shutil.which("postconf", path=os.environ["PATH"] + ":/usr/sbin") or "postconf",
             "-dh", "mail_version"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip

    def drain(self, timeout: float) -> None:
        self.instance.wait_empty(timeout)

    def stop(self) -> None:
        self.instance.stop()
        self._sink.terminate()
        self._sink.wait(10)


async def wait_sink(sink: SinkProcess, count: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while sink.count() < count:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


def show(name: str, result: Result, watch: PytestWatch) -> bool:
    """Print one run; True when pytest ran during it."""
    line = f"  {name:<34} {result.accepted:6d} accepted in {result.seconds:6.2f} s"
    line += f"  {result.rate:7.1f} msgs/s"
    if result.waits:
        line += (
            f"  250 after data p50 {result.wait_ms(0.5):6.1f} ms p99 {result.wait_ms(0.99):6.1f}"
        )
    if result.failed:
        line += f"  ({result.failed} refused: {'; '.join(result.replies)})"
    noisy = watch.seen()
    if noisy:
        line += "  [pytest was running: not a valid figure]"
    print(line, flush=True)
    return noisy


async def start_postwire(
    stack: contextlib.AsyncExitStack,
    workdir: Path,
    dns: LoopbackDns,
    sink: SinkProcess,
    cert: Path,
    key: Path,
) -> Target:
    """postwire ``run all`` on a throwaway database and vhost with its submission port
    open, and an account with a verified domain and sender (as e2e.py makes them)."""
    database_url = await stack.enter_async_context(temp_database())
    broker_url = stack.enter_context(temp_vhost())
    port = free_port()
    env = env_for(database_url, broker_url, dns, sink) | {
        "POSTWIRE_SMTP_PORT": str(port),
        "POSTWIRE_SMTP_TLS_CERT": str(cert),
        "POSTWIRE_SMTP_TLS_KEY": str(key),
    }
    await asyncio.to_thread(migrate, env)
    print("starting postwire (run all) …", flush=True)
    process = PlatformProcess(["all"], env, workdir).start()
    stack.callback(process.stop)
    tenant = await Tenant.create(
        Urls.single(process.url), ADMIN_TOKEN, unique_name("smtp"), SENDER_DOMAIN
    )
    await tenant.close()
    return Target("postwire", port, tenant.sender, True, (tenant.api_user, tenant.api_key))


async def main(args: argparse.Namespace) -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench/smtp.py runs Postfix as a private instance: run it as root")
    if pytest_running():
        print("# WARNING: pytest is running on this machine; figures will be low", flush=True)
    watch = PytestWatch()
    modes = ["fresh", "reused"] if args.mode == "both" else [args.mode]
    workdir = Path(tempfile.mkdtemp(prefix="postwire-smtp-bench-"))
    certificate = self_signed("127.0.0.1", "localhost")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    cert.write_bytes(certificate.cert_pem)
    key.touch(mode=0o600)
    key.write_bytes(certificate.key_pem)

    dns = LoopbackDns().start()
    dns.mail_domain(RECIPIENT_DOMAIN)
    sink = SinkProcess(workdir)
    postfix = PostfixSide(workdir, cert, key)
    figures: list[dict[str, object]] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            postwire = None
            sender = f"news@{SENDER_DOMAIN}"
            if not args.no_postwire:
                postwire = await start_postwire(stack, workdir, dns, sink, cert, key)
                sender = postwire.sender
            postfix_tls = Target("postfix", postfix.port, sender, True)
            postfix_plain = Target("postfix plain", postfix.port, sender, False)
            print(
                f"# N={args.messages} per run, {args.sessions} sessions, postfix "
                f"{postfix.version} (queue on {fs_type(postfix.instance.queue_dir)}), "
                f"{os.cpu_count()} CPUs",
                flush=True,
            )

            async def postwire_run(total: int, size: int, reuse: bool) -> Result:
                assert postwire is not None
                before = sink.count()
                result = await asyncio.to_thread(
                    generate, postwire, total, size, args.sessions, reuse
                )
                if not await wait_sink(sink, before + result.accepted, args.timeout):
                    print("  WARNING: postwire did not deliver everything in time")
                return result

            async def postfix_run(target: Target, total: int, size: int, reuse: bool) -> Result:
                result = await asyncio.to_thread(
                    generate, target, total, size, args.sessions, reuse
                )
                await asyncio.to_thread(postfix.drain, args.timeout)
                return result

            # Warm both up (connections, caches, the first messages of an account).
            if postwire is not None:
                await postwire_run(100, 2048, False)
            await postfix_run(postfix_tls, 100, 2048, False)
            watch.seen()

            for size in args.sizes:
                print(f"== {size} bytes", flush=True)
                reference = await asyncio.to_thread(
                    smtp_source, postfix.port, args.messages, size, args.sessions, sender
                )
                await asyncio.to_thread(postfix.drain, args.timeout)
                noisy_reference = show("postfix, smtp-source (plain)", reference, watch)
                for mode in modes:
                    reuse = mode == "reused"
                    plain = await postfix_run(postfix_plain, args.messages, size, reuse)
                    noisy = noisy_reference
                    noisy |= show(f"postfix, generator plain, {mode}", plain, watch)
                    theirs = await postfix_run(postfix_tls, args.messages, size, reuse)
                    noisy |= show(f"postfix, STARTTLS, {mode}", theirs, watch)
                    ours = Result()
                    if postwire is not None:
                        ours = await postwire_run(args.messages, size, reuse)
                        noisy |= show(f"postwire, STARTTLS+AUTH, {mode}", ours, watch)
                    ratio = ours.rate / theirs.rate if theirs.rate else float("nan")
                    figure = {
                        "size": size,
                        "mode": mode,
                        "postwire_msgs_per_s": round(ours.rate, 1) if postwire else None,
                        "postfix_msgs_per_s": round(theirs.rate, 1),
                        "ratio": round(ratio, 2) if postwire else None,
                        "postfix_plain_msgs_per_s": round(plain.rate, 1),
                        "postfix_smtp_source_msgs_per_s": round(reference.rate, 1),
                        "postwire_250_p50_ms": round(ours.wait_ms(0.5), 1) if postwire else None,
                        "postfix_250_p50_ms": round(theirs.wait_ms(0.5), 1),
                        "refused": ours.failed + theirs.failed + plain.failed + reference.failed,
                        "noisy": noisy,
                    }
                    figures.append(figure)
                    shown = {
                        k: v
                        for k, v in figure.items()
                        if k not in ("refused", "noisy") and v is not None
                    }
                    print(
                        "smtp_accept "
                        + " ".join(f"{k}={v}" for k, v in shown.items())
                        + (" noisy=pytest" if noisy else ""),
                        flush=True,
                    )
    finally:
        watch.stop()
        postfix.stop()
        sink.stop()
        dns.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(figures))  # noqa: ASYNC240 - at the end
    if any(f["refused"] for f in figures):
        print(f"WARNING: some messages were refused; logs in {workdir}")
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="SMTP accept rate: postwire's submission port against Postfix's smtpd"
    )
    parser.add_argument("--messages", type=int, default=2000, help="messages per run")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent SMTP sessions")
    parser.add_argument(
        "--sizes", type=_sizes, default=list(SIZES), help="payload bytes, comma list"
    )
    parser.add_argument(
        "--mode",
        choices=["fresh", "reused", "both"],
        default="both",
        help="a connection per message (like smtp-source), one per session, or both",
    )
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait to drain")
    parser.add_argument("--json", help="also write the figures to this file as JSON")
    parser.add_argument(
        "--no-postwire", action="store_true", help="only the Postfix runs (no database needed)"
    )
    asyncio.run(main(parser.parse_args()))
