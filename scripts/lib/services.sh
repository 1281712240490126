# shellcheck shell=bash
# Make sure RabbitMQ and PostgreSQL answer on 127.0.0.1: start them if they are installed
# and stopped; install them from Debian's packages if they are missing and we are root.
# Sourced by scripts/up, scripts/test and .ci/run.

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port what seconds
  local i
  for ((i = 0; i < ${3:-60} * 5; i++)); do
    port_open "$1" && return 0
    sleep 0.2
  done
  die "$2 is not answering on 127.0.0.1:$1 after ${3:-60}s"
}

apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
    die "$* is missing; install it (as root: apt-get install $*) and run this again"
  say "installing $* (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_rabbitmq() {
  port_open 5672 && { ensure_rabbitmq_management; return 0; }
  if ! command -v rabbitmq-server >/dev/null && [ ! -x /usr/sbin/rabbitmq-server ]; then
    apt_install rabbitmq-server
  fi
  port_open 5672 && return 0 # the package's own service may have started it
  say "starting RabbitMQ"
  PATH="$PATH:/usr/sbin" rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port 5672 RabbitMQ 90
  ensure_rabbitmq_management
}

# The notifier makes the broker users of AMQP queue consumers through the management
# HTTP API (port 15672). Enabling a plugin that is enabled already changes nothing.
ensure_rabbitmq_management() {
  port_open 15672 && return 0
  say "enabling RabbitMQ's management plugin"
  PATH="$PATH:/usr/sbin" rabbitmq-plugins enable rabbitmq_management >/dev/null ||
    die "could not enable rabbitmq_management (run: rabbitmq-plugins enable rabbitmq_management)"
  wait_port 15672 "RabbitMQ management" 60
}

ensure_postgres() {
  port_open 5432 && return 0
  local fresh=
  if [ ! -d /etc/postgresql ] || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
    fresh=1
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ -n "$fresh" ]; then
    # A database we just installed for development: trust local TCP connections, so the
    # default POSTWIRE_DATABASE_URL (postgres@127.0.0.1, no password) works.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    grep -q "postwire development" "$hba" || sed -i "1i host all all 127.0.0.1/32 trust # postwire development\nhost all all ::1/128 trust # postwire development" "$hba"
  fi
  port_open 5432 && return 0
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null ||
    pg_ctlcluster "$version" main start ||
    die "could not start PostgreSQL $version (try: pg_ctlcluster $version main start)"
  wait_port 5432 PostgreSQL 60
}
