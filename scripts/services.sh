#!/usr/bin/env bash
# The servers tests/distributed talks to, on loopback: PostgreSQL (5432, trust auth for the
# postgres role), Redis (6379) and RabbitMQ (5672, guest/guest). Each one that is down is
# started; one that is not installed is first installed from Debian's packages (as root).
# Quick and silent when all three are up. S3 needs nothing here: the tests start moto's server.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_up() {  # port name
    for _ in $(seq 1 240); do
        if up "$1"; then return 0; fi
        sleep 0.5
    done
    echo "services.sh: $2 did not come up on 127.0.0.1:$1" >&2
    return 1
}

install() {  # package...
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "services.sh: install $* (Debian packages) to run tests/distributed" >&2
        return 1
    fi
    echo "==> installing $* from apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! up 5432; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        install postgresql
        version="$(ls /etc/postgresql | sort -n | tail -1)"
        # the tests connect as postgres over TCP without a password, as on the project's machines
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' \
            "/etc/postgresql/$version/main/pg_hba.conf"
    fi
    echo "==> starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -1)" main start
    wait_up 5432 PostgreSQL
fi

if ! up 6379; then
    command -v redis-server >/dev/null 2>&1 || install redis-server
    echo "==> starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_up 6379 Redis
fi

if ! up 5672; then
    command -v rabbitmq-server >/dev/null 2>&1 || install rabbitmq-server
    echo "==> starting RabbitMQ"
    rabbitmq-server -detached
    wait_up 5672 RabbitMQ
fi
