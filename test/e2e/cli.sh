#!/usr/bin/env bash
# End-to-end test with the openstack CLI (python3-openstackclient) against
# `cellcloud up`: the tools people already use, unchanged. Until Identity v3
# exists (a later release) the CLI runs with auth type "none" and an
# endpoint override per service, through a clouds.yaml.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v openstack >/dev/null || { echo "cli.sh: the openstack CLI is not installed (Debian package python3-openstackclient)"; exit 1; }

work=$(mktemp -d)
port=$(( 20000 + RANDOM % 10000 ))
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/cellcloud" ./cmd/cellcloud
"$work/cellcloud" up --data-dir "$work/data" --api-port "$port" --listen 127.0.0.1 --log-level warn >"$work/up.out" 2>"$work/up.err" &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/v2.1" >/dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/v2.1" >/dev/null || { echo "cli.sh: cellcloud up did not start"; cat "$work/up.err"; exit 1; }

cat >"$work/clouds.yaml" <<YAML
clouds:
  cellcloud:
    auth_type: none
    auth:
      endpoint: http://127.0.0.1:$port/v2.1
    compute_endpoint_override: http://127.0.0.1:$port/v2.1
    image_endpoint_override: http://127.0.0.1:$port/image
    network_endpoint_override: http://127.0.0.1:$port/networking
YAML
export OS_CLIENT_CONFIG_FILE="$work/clouds.yaml" OS_CLOUD=cellcloud

fail() { echo "cli.sh: FAIL: $*"; echo "---- cellcloud log ----"; tail -30 "$work/up.err"; exit 1; }
os() { timeout 120 openstack "$@"; }
expect() { # expect WANT CMD...: the command's output must contain WANT
  local want=$1; shift
  local out
  out=$(os "$@" 2>&1) || fail "openstack $*: $out"
  grep -qF -- "$want" <<<"$out" || fail "openstack $*: want '$want' in: $out"
  echo "ok   openstack $*"
}

expect m1.tiny flavor list
expect cirros-0.6.2-x86_64-disk image list
expect private network list
expect "PRIVATE KEY" keypair create k1
expect k1 keypair list
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private --key-name k1 --wait vm1
expect vm1 server list
expect "'private': ['10." server show vm1 -f value -c addresses
os server stop vm1 || fail "server stop"
for _ in $(seq 1 50); do [ "$(os server show vm1 -f value -c status)" = SHUTOFF ] && break; sleep 0.2; done
expect SHUTOFF server show vm1 -f value -c status
os server start vm1 || fail "server start"
for _ in $(seq 1 50); do [ "$(os server show vm1 -f value -c status)" = ACTIVE ] && break; sleep 0.2; done
expect ACTIVE server show vm1 -f value -c status
expect Complete server reboot --hard --wait vm1
expect Complete server resize --flavor m1.small --wait vm1
expect VERIFY_RESIZE server show vm1 -f value -c status
os server resize confirm vm1 || fail "resize confirm"
for _ in $(seq 1 50); do [ "$(os server show vm1 -f value -c status)" = ACTIVE ] && break; sleep 0.2; done
expect "m1.small" server show vm1 -f value -c flavor
expect "login: cirros" console log show vm1
expect resize server event list vm1
out=$(os server show no-such-server 2>&1) && fail "showing a missing server succeeded: $out"
grep -qF "No server with a name or ID" <<<"$out" || fail "missing server: $out"
echo "ok   openstack server show no-such-server (refused)"
os server delete --wait vm1 || fail "server delete"
out=$(os server list -f value) || fail "server list"
[ -z "$out" ] || fail "servers left after delete: $out"
echo "ok   server deleted"
echo "cli.sh: PASS"
