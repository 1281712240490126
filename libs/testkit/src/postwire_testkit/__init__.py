"""Real peers on loopback for postwire's tests and benchmarks.

- :class:`~postwire_testkit.dns.LoopbackDns`: an authoritative DNS server (dnslib).
- :class:`~postwire_testkit.smtp.SmtpSink`: an SMTP server (aiosmtpd) standing in for
  recipients' MX hosts, with scriptable rejections and temporary failures.
- :class:`~postwire_testkit.http.HttpReceiver`: an HTTP server receiving webhook pushes.
- :mod:`~postwire_testkit.infra`: throwaway PostgreSQL databases and RabbitMQ vhosts.
- :class:`~postwire_testkit.proxy.TcpProxy`: a TCP relay that can be cut (broker outages).
- :class:`~postwire_testkit.platform.PlatformProcess`: ``postwire run ...`` as a child process.
"""
