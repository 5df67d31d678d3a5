#!/usr/bin/env bash
# End-to-end test with Terraform and the OpenStack provider against
# `cellcloud up` (issue 14's done criterion): test/e2e/terraform/main.tf
# (a network, a /28 subnet, a security group with rules, a port, a server
# on that port, and peers in the group, with tags; a data volume attached
# to the server, a volume made from the image, a server booted from a
# volume) applies, changes in
# place (a rule added, the server and port renamed, the tags changed, the volume
# renamed and extended while attached), plans
# no changes after each apply, and destroys with nothing left behind.
#
# The provider is built from Go source (there is no registry here) into
# TF_PROVIDER_DIR (default $(go env GOPATH)/terraform-provider-openstack/
# <version>, so that each version is built once)
# and used through a CLI config's dev_overrides, so no `terraform init`.
#
# TF_WITH_PORTS=1 (the default) creates the port and boots the server on
# it, and the peers on the test network (their addresses handed out by
# their cells from blocks of the /28 leased to them); 0 boots them all on
# the network "private" with the group by name. TF_BOOT_NETWORK overrides the peers' network ("" is the
# test network), TF_UP_ARGS adds flags to `cellcloud up` (--cells 4),
# TF_KEEP=1 keeps the work directory, TF_UP_LOG_LEVEL=info logs every
# request there (up.err).
set -euo pipefail
cd "$(dirname "$0")/../.."

provider_version=v3.4.0
with_ports=${TF_WITH_PORTS:-1}
command -v terraform >/dev/null || { echo "terraform.sh: terraform is not installed"; exit 1; }
command -v curl >/dev/null && command -v python3 >/dev/null || { echo "terraform.sh: curl and python3 are needed"; exit 1; }

provider_dir=${TF_PROVIDER_DIR:-$(go env GOPATH)/terraform-provider-openstack/$provider_version}
if [ ! -x "$provider_dir/terraform-provider-openstack" ]; then
  echo "terraform.sh: building the OpenStack provider $provider_version into $provider_dir"
  GOBIN=$provider_dir go install "github.com/terraform-provider-openstack/terraform-provider-openstack/v3@$provider_version"
fi

work=$(mktemp -d)
port=$(( 20000 + RANDOM % 10000 ))
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ "${TF_KEEP:-0}" = 1 ]; then echo "terraform.sh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

cat >"$work/terraformrc" <<EOF
provider_installation {
  dev_overrides {
    "registry.terraform.io/terraform-provider-openstack/openstack" = "$provider_dir"
  }
  direct {}
}
EOF
export TF_CLI_CONFIG_FILE=$work/terraformrc TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
mkdir "$work/tf"
cp test/e2e/terraform/main.tf "$work/tf/"

go build -o "$work/cellcloud" ./cmd/cellcloud
"$work/cellcloud" up --data-dir "$work/data" --api-port "$port" --listen 127.0.0.1 --log-level "${TF_UP_LOG_LEVEL:-warn}" ${TF_UP_ARGS:-} >"$work/up.out" 2>"$work/up.err" &
pid=$!
for _ in $(seq 1 300); do
  grep -qF "Press Ctrl-C to stop." "$work/up.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
grep -qF "Press Ctrl-C to stop." "$work/up.out" || { echo "terraform.sh: cellcloud up did not start"; cat "$work/up.out" "$work/up.err"; exit 1; }

unset OS_CLOUD OS_CLIENT_CONFIG_FILE
# shellcheck disable=SC1091
source "$work/data/openrc-demo"
base=http://127.0.0.1:$port

fail() { echo "terraform.sh: FAIL: $*"; echo "---- cellcloud log ----"; tail -30 "$work/up.err"; exit 1; }
ok() { echo "ok   $*"; }

# token USER: a token of that user's openrc (in a subshell: the
# environment stays the demo's).
token() {
  (
    # shellcheck disable=SC1090
    source "$work/data/openrc-$1"
    OS_PASSWORD=$OS_PASSWORD python3 - >"$work/auth.json" <<'EOF'
import json, os
e = os.environ
print(json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": e["OS_USERNAME"], "domain": {"name": "Default"}, "password": e["OS_PASSWORD"]}}},
                           "scope": {"project": {"name": e["OS_PROJECT_NAME"], "domain": {"name": "Default"}}}}}))
EOF
    curl -sf -D - -o /dev/null -H 'Content-Type: application/json' --data @"$work/auth.json" "$base/identity/v3/auth/tokens" |
      tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
  )
}
demo_token=$(token demo)
admin_token=$(token admin)
[ -n "$demo_token" ] && [ -n "$admin_token" ] || fail "no token"

# api TOKEN PATH: GET PATH (under $base), the body on stdout; the status
# code in $work/status.
api() {
  curl -s -o "$work/body" -w '%{http_code}' -H "X-Auth-Token: $1" "$base$2" >"$work/status" || true
  cat "$work/body"
}
status() { cat "$work/status"; }
# js EXPR: evaluates EXPR on the JSON on stdin (as d).
js() { python3 -c "import json, sys, ipaddress; d = json.load(sys.stdin); print($1)"; }

tf() { timeout 600 terraform -chdir="$work/tf" "$@"; }
# The peers boot on TF_BOOT_NETWORK ("" is the test network): by default
# the test network with ports (where the port's server is), else "private"
# (the one network main can boot on).
if [ "$with_ports" = 1 ]; then boot_network=${TF_BOOT_NETWORK-}; else boot_network=${TF_BOOT_NETWORK-private}; fi
vars=(-var "with_ports=$([ "$with_ports" = 1 ] && echo true || echo false)" -var "boot_network=$boot_network")
changed=(-var server_name=tf-e2e-vm-renamed -var port_name=tf-e2e-port-renamed -var extra_rule=true -var tag=e2e-changed
  -var volume_name=tf-e2e-data-renamed -var volume_size=2)

# no_changes STEP VARS...: a plan right after an apply must be empty
# (exit 0); a diff means our API answers differently from what the
# provider wrote.
no_changes() {
  local step=$1; shift
  local rc=0
  tf plan -detailed-exitcode -no-color "$@" >"$work/plan.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$work/plan.out"; fail "plan after $step: exit $rc, want 0 (no changes)"; }
  ok "terraform plan after $step: no changes"
}

# ingress_rules GROUP: the group's ingress rules as "protocol:min-max:remote", sorted.
ingress_rules() {
  api "$demo_token" "/networking/v2.0/security-group-rules?security_group_id=$1&direction=ingress" |
    js '"\n".join(sorted("%s:%s-%s:%s" % (r["protocol"], r["port_range_min"], r["port_range_max"], r["remote_ip_prefix"] or ("group:" + r["remote_group_id"])) for r in d["security_group_rules"]))'
}

# check_servers NAME: the server and the peers are ACTIVE, in the group,
# and the server has its address; prints the cells they are in.
check_servers() {
  local name=$1 out id s cells=""
  member_ips=""
  out=$(tf output -json) || fail "terraform output"
  server_id=$(js 'd["server_id"]["value"]' <<<"$out")
  sg_id=$(js 'd["secgroup_id"]["value"]' <<<"$out")
  cidr=$(js 'd["subnet_cidr"]["value"]' <<<"$out")
  [ "$(js 'd["server_power_state"]["value"]' <<<"$out")" = active ] || fail "server power_state: $out"
  [ "$(js 'd["server_name"]["value"]' <<<"$out")" = "$name" ] || fail "server name: $out"
  ip=$(js 'd["server_ip"]["value"]' <<<"$out")
  if [ "$with_ports" = 1 ]; then
    [ "$(js 'd["port_ip"]["value"]' <<<"$out")" = 192.168.77.5 ] || fail "port's fixed IP: $out"
    [ "$ip" = 192.168.77.5 ] || fail "server's IP $ip is not its port's"
  fi
  [ -n "$ip" ] || fail "server has no IPv4 address: $out"
  for id in "$server_id" $(js '" ".join(d["peer_ids"]["value"])' <<<"$out"); do
    s=$(api "$admin_token" "/v2.1/servers/$id")
    [ "$(status)" = 200 ] || fail "GET server $id: $(status) $s"
    [ "$(js 'd["server"]["status"]' <<<"$s")" = ACTIVE ] || fail "server $id not ACTIVE: $s"
    [ "$(js '",".join(sorted(set(g["name"] for g in d["server"].get("security_groups", []))))' <<<"$s")" = tf-e2e-sg ] ||
      fail "server $id is not in tf-e2e-sg alone: $s"
    cells+="$(js 'd["server"]["OS-EXT-SRV-ATTR:host"].split("-host")[0]' <<<"$s")
"
    member_ips+="$(js '"\n".join(a["addr"] for n in d["server"]["addresses"].values() for a in n if a["version"] == 4)' <<<"$s")
"
  done
  if [ "$with_ports" = 1 ]; then
    python3 -c 'import ipaddress, sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))' "$ip" "$cidr" ||
      fail "server's IP $ip is not in the subnet $cidr"
  fi
  ok "servers ACTIVE in tf-e2e-sg alone (server $ip), in cells: $(sed '/^$/d' <<<"$cells" | sort | uniq -c | xargs)"
}

# enforced_rules: the ingress rules the server's host enforces on its
# port (an admin's GET /servers/{id}/firewall), as "protocol:min-max:remote"
# with a remote group expanded to its members' addresses, sorted.
enforced_rules() {
  api "$admin_token" "/v2.1/servers/$server_id/firewall" |
    js '"\n".join(sorted("%s:%s-%s:%s" % (r.get("protocol"), r.get("port_range_min"), r.get("port_range_max"), ("group:" + r["remote_group_id"] + "=" + ",".join(sorted(r.get("remote") or []))) if r.get("remote_group_id") else ",".join(r.get("remote") or [])) for p in d["firewall"]["ports"] for r in p["rules"] if r["direction"] == "ingress"))'
}

# check_enforced WANT: what the server is allowed in is WANT, with
# MEMBERS standing for the group's members (the server and its peers, in
# both cells): the cells hold the group's rules and members.
check_enforced() {
  local want got members
  members=$(sed '/^$/d' <<<"$member_ips" | sort | paste -sd,)
  want=${1//MEMBERS/$members}
  for _ in $(seq 1 150); do
    got=$(enforced_rules) && [ "$got" = "$want" ] && break
    sleep 0.2
  done
  [ "$got" = "$want" ] || fail "the server's host enforces: $got, want $want"
  ok "the server's host enforces the group's rules, its remote group expanded to the $(tr ',' '\n' <<<"$members" | wc -l) members"
}

# check_tags TAG: the network and the group are tagged TAG, the subnet
# TAG and "subnet"; with ports, the port is named by the last apply.
check_tags() {
  local out net_id subnet_id
  out=$(tf output -json) || fail "terraform output"
  net_id=$(js 'd["network_id"]["value"]' <<<"$out")
  subnet_id=$(js 'd["subnet_id"]["value"]' <<<"$out")
  [ "$(api "$demo_token" "/networking/v2.0/networks/$net_id" | js '",".join(d["network"]["tags"])')" = "$1" ] || fail "network's tags: $(cat "$work/body")"
  [ "$(api "$demo_token" "/networking/v2.0/subnets/$subnet_id" | js '",".join(sorted(d["subnet"]["tags"]))')" = "$(printf '%s\n' "$1" subnet | sort | paste -sd,)" ] || fail "subnet's tags: $(cat "$work/body")"
  [ "$(api "$demo_token" "/networking/v2.0/security-groups/$sg_id" | js '",".join(d["security_group"]["tags"])')" = "$1" ] || fail "group's tags: $(cat "$work/body")"
  if [ "$with_ports" = 1 ]; then
    [ "$(api "$demo_token" "/networking/v2.0/ports/$(js 'd["port_id"]["value"]' <<<"$out")" | js 'd["port"]["name"]')" = "$2" ] || fail "port's name: $(cat "$work/body")"
    ok "the port is named $2"
  fi
  ok "the network, subnet and group are tagged $1"
}

# check_volumes NAME SIZE: the data volume is named NAME, SIZE GiB,
# in-use on the server at the device Terraform recorded; the volume made
# from the image is available and bootable; the server booted from a
# volume is ACTIVE with no image and its boot volume in-use on it.
check_volumes() {
  local out v bfv boot
  out=$(tf output -json) || fail "terraform output"
  v=$(api "$demo_token" "/volume/v3/$project_id/volumes/$(js 'd["volume_id"]["value"]' <<<"$out")")
  [ "$(status)" = 200 ] || fail "GET the data volume: $(status) $v"
  [ "$(js '"%s %s %s" % (d["volume"]["name"], d["volume"]["size"], d["volume"]["status"])' <<<"$v")" = "$1 $2 in-use" ] ||
    fail "data volume: $v, want $1, $2 GiB, in-use"
  [ "$(js '" ".join(a["server_id"] + "@" + a["device"] for a in d["volume"]["attachments"])' <<<"$v")" = "$server_id@$(js 'd["volume_attachment_device"]["value"]' <<<"$out")" ] ||
    fail "data volume's attachments: $v, want $server_id at the device Terraform recorded"
  v=$(api "$demo_token" "/volume/v3/$project_id/volumes/$(js 'd["from_image_volume_id"]["value"]' <<<"$out")")
  [ "$(js '"%s %s" % (d["volume"]["status"], d["volume"]["bootable"])' <<<"$v")" = "available true" ] ||
    fail "volume from the image: $v, want available and bootable"
  bfv=$(api "$demo_token" "/v2.1/servers/$(js 'd["bfv_id"]["value"]' <<<"$out")")
  [ "$(js '"%s %r" % (d["server"]["status"], d["server"]["image"])' <<<"$bfv")" = "ACTIVE ''" ] ||
    fail "server booted from a volume: $bfv, want ACTIVE with image \"\""
  boot=$(js 'd["server"]["os-extended-volumes:volumes_attached"][0]["id"]' <<<"$bfv")
  v=$(api "$demo_token" "/volume/v3/$project_id/volumes/$boot")
  [ "$(js '"%s %s %s" % (d["volume"]["status"], d["volume"]["bootable"], d["volume"]["attachments"][0]["server_id"])' <<<"$v")" = "in-use true $(js 'd["bfv_id"]["value"]' <<<"$out")" ] ||
    fail "the boot volume: $v, want in-use, bootable, on the server"
  volume_ids="$(js 'd["volume_id"]["value"] + " " + d["from_image_volume_id"]["value"]' <<<"$out") $boot"
  ok "volumes: $1 ($2 GiB) in-use on the server, one made from the image, a server booted from a volume"
}
project_id=$(curl -s -H "X-Auth-Token: $demo_token" -H "X-Subject-Token: $demo_token" "$base/identity/v3/auth/tokens" | js 'd["token"]["project"]["id"]')
[ -n "$project_id" ] || fail "no project id"

# Apply.
tf apply -auto-approve -no-color "${vars[@]}" >"$work/apply.out" 2>&1 || { cat "$work/apply.out"; fail "terraform apply"; }
ok "terraform apply"
check_servers tf-e2e-vm
first_server=$server_id
want="icmp:None-None:group:$sg_id
tcp:22-22:0.0.0.0/0"
[ "$(ingress_rules "$sg_id")" = "$want" ] || fail "ingress rules: $(ingress_rules "$sg_id"), want $want"
ok "the group's rules are the configuration's"
check_enforced "icmp:None-None:group:$sg_id=MEMBERS
tcp:22-22:0.0.0.0/0"
check_tags e2e tf-e2e-port
check_volumes tf-e2e-data 1
no_changes apply "${vars[@]}"

# Change: a rule added, the server and the port renamed, all in place.
tf apply -auto-approve -no-color "${vars[@]}" "${changed[@]}" >"$work/apply.out" 2>&1 || { cat "$work/apply.out"; fail "terraform apply (change)"; }
grep -qF "0 destroyed" "$work/apply.out" || { cat "$work/apply.out"; fail "the change replaced resources"; }
ok "terraform apply (change: a rule, the server's and the port's names)"
check_servers tf-e2e-vm-renamed
[ "$server_id" = "$first_server" ] || fail "the server was replaced"
want="icmp:None-None:group:$sg_id
tcp:22-22:0.0.0.0/0
tcp:80-80:10.0.0.0/8"
[ "$(ingress_rules "$sg_id")" = "$want" ] || fail "ingress rules after the change: $(ingress_rules "$sg_id"), want $want"
ok "the group's rules are the changed configuration's"
check_enforced "icmp:None-None:group:$sg_id=MEMBERS
tcp:22-22:0.0.0.0/0
tcp:80-80:10.0.0.0/8"
check_tags e2e-changed tf-e2e-port-renamed
check_volumes tf-e2e-data-renamed 2
no_changes change "${vars[@]}" "${changed[@]}"

# Destroy: nothing of the test is left.
out=$(tf output -json)
net_id=$(js 'd["network_id"]["value"]' <<<"$out")
subnet_id=$(js 'd["subnet_id"]["value"]' <<<"$out")
servers=$(js '" ".join([d["server_id"]["value"], d["bfv_id"]["value"]] + d["peer_ids"]["value"])' <<<"$out")
tf destroy -auto-approve -no-color "${vars[@]}" "${changed[@]}" >"$work/destroy.out" 2>&1 || { cat "$work/destroy.out"; fail "terraform destroy"; }
ok "terraform destroy"
for id in $servers; do
  api "$admin_token" "/v2.1/servers/$id" >/dev/null
  [ "$(status)" = 404 ] || fail "server $id left: $(status) $(cat "$work/body")"
done
for p in "networks/$net_id" "subnets/$subnet_id" "security-groups/$sg_id"; do
  api "$demo_token" "/networking/v2.0/$p" >/dev/null
  [ "$(status)" = 404 ] || fail "$p left: $(status) $(cat "$work/body")"
done
left=$(api "$admin_token" "/networking/v2.0/ports?network_id=$net_id" | js 'len(d["ports"])')
[ "$left" = 0 ] || fail "ports left on the network: $(cat "$work/body")"
left=$(api "$admin_token" "/networking/v2.0/security-group-rules?security_group_id=$sg_id" | js 'len(d["security_group_rules"])')
[ "$left" = 0 ] || fail "rules left: $(cat "$work/body")"
for id in $volume_ids; do
  api "$demo_token" "/volume/v3/$project_id/volumes/$id" >/dev/null
  [ "$(status)" = 404 ] || fail "volume $id left: $(status) $(cat "$work/body")"
done
ok "nothing of the test is left"
echo "terraform.sh: PASS (TF_WITH_PORTS=$with_ports)"
