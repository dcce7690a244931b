#!/usr/bin/env bash
# run-xdp-tests.sh: the net tests against the native backend (AF_XDP):
# every check of the generic backend's suite, plus four queues and the
# backend choice. Same arguments and environment as run-net-tests.sh.
here=$(cd "$(dirname "$0")" && pwd)
NET_BACKEND=xdp exec "$here/run-net-tests.sh" "$@"
