#!/usr/bin/env bash
# ensure-redis.sh makes sure redis-server is on PATH, for the tests and the
# demo, which start their own private servers from it. When it is missing and
# apt-get can be used (as root, or through non-interactive sudo), it installs
# the Debian/Ubuntu package. It never starts, stops or uses the system Redis
# service; the package may start one on install, which nothing here touches.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi

hint="redis-server is not on PATH. Install it, then retry:
  Debian/Ubuntu: sudo apt-get install redis-server
  macOS:         brew install redis
  other:         https://redis.io/docs/latest/operate/oss_and_stack/install/"

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo=(sudo -n)
	else
		sudo=(none)
	fi
fi

if command -v apt-get >/dev/null 2>&1 && [ "${sudo[*]-}" != none ]; then
	echo "ensure-redis: redis-server is missing; installing it with apt-get" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
	hash -r
fi

if ! command -v redis-server >/dev/null 2>&1; then
	echo "ensure-redis: $hint" >&2
	exit 1
fi
echo "ensure-redis: using $(command -v redis-server) ($(redis-server --version | head -n 1))" >&2
