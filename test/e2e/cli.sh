#!/usr/bin/env bash
# End-to-end test with the openstack CLI (python3-openstackclient) against
# `cellcloud up`: the tools people already use, unchanged. The CLI signs in
# with the openrc files `cellcloud up` writes (Identity v3, password auth,
# the service catalog), as against any OpenStack cloud.
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
# Ready means up has printed its summary (after the APIs answer and the
# openrc files are written), not merely that the API port answers.
for _ in $(seq 1 300); do
  grep -qF "Press Ctrl-C to stop." "$work/up.out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
grep -qF "Press Ctrl-C to stop." "$work/up.out" || { echo "cli.sh: cellcloud up did not start"; cat "$work/up.out" "$work/up.err"; exit 1; }
curl -sf "http://127.0.0.1:$port/v2.1" >/dev/null || { echo "cli.sh: the Compute API does not answer"; cat "$work/up.err"; exit 1; }

[ -f "$work/data/openrc-demo" ] && [ -f "$work/data/openrc-admin" ] || { echo "cli.sh: cellcloud up wrote no openrc files"; cat "$work/up.out"; exit 1; }
[ "$(stat -c %a "$work/data/openrc-demo")" = 600 ] || { echo "cli.sh: openrc-demo is not mode 0600"; exit 1; }
grep -qF "$work/data/openrc-demo" "$work/up.out" || { echo "cli.sh: cellcloud up did not print the openrc path"; cat "$work/up.out"; exit 1; }
unset OS_CLOUD OS_CLIENT_CONFIG_FILE
as() { # as USER: the environment of that user's openrc
  # shellcheck disable=SC1090
  source "$work/data/openrc-$1"
}

fail() { echo "cli.sh: FAIL: $*"; echo "---- cellcloud log ----"; tail -30 "$work/up.err"; exit 1; }
os() { timeout 120 openstack "$@"; }
expect() { # expect WANT CMD...: the command's output must contain WANT
  local want=$1; shift
  local out
  out=$(os "$@" 2>&1) || fail "openstack $*: $out"
  grep -qF -- "$want" <<<"$out" || fail "openstack $*: want '$want' in: $out"
  echo "ok   openstack $*"
}

as admin
expect "project_id" token issue
expect compute catalog list
expect demo project list
expect alice-project project create alice-project
expect alice user create --password secret-alice --project alice-project alice
os role add --project alice-project --user alice member || fail "role add"
echo "ok   openstack role add --project alice-project --user alice member"
expect alice role assignment list --project alice-project --names
expect '"instances": 10' quota show -f json demo
os quota set --instances 3 demo || fail "quota set"
expect '"instances": 3' quota show -f json demo
os quota set --instances -5 demo >/dev/null 2>&1 && fail "a negative quota was accepted"
echo "ok   openstack quota set --instances -5 (refused)"
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private --wait admin-vm

# Operator APIs across the cells: hypervisors, services, zones, usage, and the tree.
expect 'cell2-host001' hypervisor list
expect '"count": 8' hypervisor stats show -f json
expect 'api!cell1@cell1-host001' compute service list --service nova-compute
os compute service set --disable --disable-reason maint 'api!cell1@cell1-host001' nova-compute || fail "service set --disable"
expect '"Disabled Reason": "maint"' compute service list --service nova-compute --host 'api!cell1@cell1-host001' --long -f json
os compute service set --enable 'api!cell1@cell1-host001' nova-compute || fail "service set --enable"
echo "ok   openstack compute service set --disable / --enable"
expect nova availability zone list --compute
# Host aggregates (the API cell's): a zone over a host of each cell (not
# admin-vm's: a host with an instance does not change zone).
vmhost=$(os server show admin-vm -f value -c OS-EXT-SRV-ATTR:host) || fail "server show admin-vm"
h1=cell1-host001; [ "$vmhost" = "$h1" ] && h1=cell1-host002
h2=cell2-host001; [ "$vmhost" = "$h2" ] && h2=cell2-host002
expect '"availability_zone": "az1"' aggregate create --zone az1 agg1 -f json
expect "api!cell1@$h1" aggregate add host agg1 "$h1"
expect "api!cell2@$h2" aggregate add host agg1 "api!cell2@$h2"
os aggregate set --property ssd=true agg1 || fail "aggregate set --property"
echo "ok   openstack aggregate set --property ssd=true agg1"
expect '"ssd": "true"' aggregate show agg1 -f json
expect az1 availability zone list --compute
expect "api!cell2@$h2" availability zone list --long
# Builds asked for az1 land on its two hosts, whichever cell; a zone
# nobody has is refused.
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private --availability-zone az1 --wait az-vm
expect az1 server show az-vm -f value -c OS-EXT-AZ:availability_zone
azhost=$(os server show az-vm -f value -c OS-EXT-SRV-ATTR:host) || fail "server show az-vm"
[ "$azhost" = "$h1" ] || [ "$azhost" = "$h2" ] || fail "az-vm landed on $azhost, not on $h1 or $h2 (az1)"
echo "ok   az-vm on $azhost, in az1"
out=$(os server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private --availability-zone az-none nope-vm 2>&1) && fail "a server in a zone nobody has: $out"
grep -qF "The requested availability zone is not available" <<<"$out" || fail "server create --availability-zone az-none: $out"
echo "ok   openstack server create --availability-zone az-none (refused)"
os server delete --wait az-vm || fail "server delete az-vm"
# 2.81: the aggregate's hosts pre-cache an image (202, nothing shown).
os aggregate cache image agg1 cirros-0.6.2-x86_64-disk || fail "aggregate cache image"
echo "ok   openstack aggregate cache image agg1 cirros-0.6.2-x86_64-disk"
expect "$h1" hypervisor show "$h1"
os aggregate remove host agg1 "$h1" >/dev/null || fail "aggregate remove host $h1"
os aggregate remove host agg1 "api!cell2@$h2" >/dev/null || fail "aggregate remove host $h2"
echo "ok   openstack aggregate remove host"
os aggregate delete agg1 || fail "aggregate delete"
out=$(os aggregate show agg1 2>&1) && fail "a deleted aggregate: $out"
echo "ok   openstack aggregate delete agg1"
expect admin usage list
out=$("$work/cellcloud" status --data-dir "$work/data") || fail "cellcloud status: $out"
grep -qE '^  api!cell2 +up +4 hosts' <<<"$out" || fail "cellcloud status: $out"
echo "ok   cellcloud status"

as demo
expect "project_id" token issue
out=$(os project create nope 2>&1) && fail "demo created a project: $out"
echo "ok   openstack project create as demo (refused)"
out=$(os server show admin-vm 2>&1) && fail "demo saw the admin's server: $out"
echo "ok   openstack server show admin-vm as demo (not found)"
out=$(os server list -f value) || fail "server list"
[ -z "$out" ] || fail "demo lists servers it does not own: $out"
expect '"instances": 3' quota show -f json
expect m1.tiny flavor list
expect cirros-0.6.2-x86_64-disk image list
expect private network list
expect "PRIVATE KEY" keypair create k1
expect k1 keypair list
expect web security group create --description "web servers" web
expect ingress security group rule create --protocol tcp --dst-port 22 web
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private --key-name k1 --security-group web --wait vm1
expect web server show vm1 -f value -c security_groups
# What vm1's host enforces (an admin's view, GET /servers/{id}/firewall):
# web's tcp 22 rule on its port, once the cell holds the group.
vm1_id=$(os server show vm1 -f value -c id) || fail "server show vm1"
admin_token=$( (as admin; os token issue -f value -c id) ) || fail "admin token"
for _ in $(seq 1 100); do
  fw=$(curl -s -H "X-Auth-Token: $admin_token" "http://127.0.0.1:$port/v2.1/servers/$vm1_id/firewall")
  grep -qF '"protocol":"tcp","port_range_min":22' <<<"$fw" && break
  sleep 0.2
done
grep -qF '"protocol":"tcp","port_range_min":22' <<<"$fw" || fail "vm1's firewall has no tcp 22 rule: $fw"
echo "ok   GET /servers/vm1/firewall: web's tcp 22 rule enforced on vm1's port"
os server add security group vm1 default || fail "server add security group"
expect default server show vm1 -f value -c security_groups
echo "ok   openstack server add security group vm1 default"
os server remove security group vm1 default || fail "server remove security group"
out=$(os server show vm1 -f value -c security_groups) || fail "server show: $out"
grep -qF default <<<"$out" && fail "vm1 still in default: $out"
echo "ok   openstack server remove security group vm1 default"
out=$(os security group delete web 2>&1) && fail "a group in use was deleted: $out"
echo "ok   openstack security group delete web while vm1 is in it (refused)"
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
# The quota of 3 instances holds: 3 of a multi-create of 5 are built
# (Nova builds as many as fit when min_count does), a 4th is refused.
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private --min 1 --max 5 --wait q
[ "$(os server list -f value -c Name | wc -l)" = 3 ] || fail "after a multi-create with a quota of 3: $(os server list -f value -c Name)"
echo "ok   multi-create built 3 with a quota of 3"
out=$(os server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private over 2>&1) && fail "a 4th server was accepted: $out"
grep -qF "Quota exceeded for instances" <<<"$out" || fail "over quota: $out"
echo "ok   openstack server create over quota (refused: Quota exceeded)"
for n in vm1 $(os server list -f value -c Name | grep -v '^vm1$'); do os server delete --wait "$n" || fail "server delete $n"; done
out=$(os server list -f value) || fail "server list"
[ -z "$out" ] || fail "servers left after delete: $out"
echo "ok   servers deleted"
# A member's own network, subnet and port (Neutron's defaults let members
# make them), a server on the port and one on the network: the port's fixed
# address is honoured in whichever cell the server lands, the other's is
# handed out by its cell from a block of the subnet leased to it.
expect e2e-net network create e2e-net
expect 192.168.60.0/28 subnet create --network e2e-net --subnet-range 192.168.60.0/28 e2e-sub
expect 192.168.60.5 port create --network e2e-net --fixed-ip subnet=e2e-sub,ip-address=192.168.60.5 --security-group web e2e-port
port_id=$(os port show e2e-port -f value -c id) || fail "port show"
out=$(os port create --network e2e-net --fixed-ip subnet=e2e-sub,ip-address=192.168.60.5 again 2>&1) && fail "an address taken was given again: $out"
echo "ok   openstack port create with an address already taken (refused)"
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --nic "port-id=$port_id" --wait vm-port
vm_port=$(os server show vm-port -f value -c id) || fail "server show vm-port"
expect "'e2e-net': ['192.168.60.5']" server show vm-port -f value -c addresses
expect "$vm_port" port show e2e-port -f value -c device_id
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network e2e-net --wait vm-net
expect "'e2e-net': ['192.168.60." server show vm-net -f value -c addresses
expect e2e-port port list --server vm-port
out=$(os port delete e2e-port 2>&1) && fail "a port in use was deleted: $out"
echo "ok   openstack port delete of vm-port's port (refused)"
# A second port attached to vm-net and detached again (os-interface): bound
# while attached and shown in the server's addresses, kept, unbound, once
# detached; and an interface on the network, its port made by the API cell.
expect 192.168.60.9 port create --network e2e-net --fixed-ip subnet=e2e-sub,ip-address=192.168.60.9 e2e-port2
vm_net=$(os server show vm-net -f value -c id) || fail "server show vm-net"
os server add port vm-net e2e-port2 || fail "server add port"
expect "$vm_net" port show e2e-port2 -f value -c device_id
expect 192.168.60.9 server show vm-net -f value -c addresses
expect e2e-port2 port list --server vm-net
echo "ok   openstack server add port vm-net e2e-port2"
os server remove port vm-net e2e-port2 || fail "server remove port"
out=$(os port show e2e-port2 -f value -c device_id) || fail "port show e2e-port2: $out"
[ -z "$out" ] || fail "e2e-port2 still bound to $out"
for _ in $(seq 1 50); do
  out=$(os server show vm-net -f value -c addresses) || fail "server show vm-net: $out"
  grep -qF 192.168.60.9 <<<"$out" || break
  sleep 0.2
done
grep -qF 192.168.60.9 <<<"$out" && fail "vm-net still has 192.168.60.9: $out"
echo "ok   openstack server remove port vm-net e2e-port2 (kept, unbound)"
os port delete e2e-port2 || fail "port delete e2e-port2"
os server add network vm-net e2e-net || fail "server add network"
[ "$(os port list --server vm-net -f value -c ID | wc -l)" = 2 ] || fail "vm-net's ports after add network: $(os port list --server vm-net)"
echo "ok   openstack server add network vm-net e2e-net"
os server delete --wait vm-port vm-net || fail "server delete vm-port vm-net"
out=$(os port show e2e-port -f value -c device_id) || fail "port show after the server went: $out"
[ -z "$out" ] || fail "e2e-port still bound to $out"
echo "ok   the port passed in is kept, unbound, when its server is deleted"
os port delete e2e-port || fail "port delete"
os subnet delete e2e-sub || fail "subnet delete"
os network delete e2e-net || fail "network delete"
echo "ok   openstack port, subnet and network delete"
os security group delete web || fail "security group delete web"
echo "ok   openstack security group delete web"
# Volumes (Block Storage v3): a blank volume and one made from an image,
# each in a compute cell's backend as a sparse file of its size (the
# image's bytes first); a snapshot; a volume with a snapshot is not
# deleted; then all go, files too. The operator sees each cell's
# cinder-volume.
as demo
wait_status() { # wait_status KIND NAME WANT: poll until KIND NAME has status WANT
  local st=""
  for _ in $(seq 1 300); do
    st=$(os $1 show "$2" -f value -c status 2>&1) || true
    [ "$st" = "$3" ] && return 0
    [ "$st" = error ] && fail "$1 $2 went to error"
    sleep 0.2
  done
  fail "$1 $2 is '$st', not $3"
}
wait_gone() { # wait_gone KIND NAME: poll until KIND NAME is not found
  for _ in $(seq 1 300); do
    os $1 show "$2" >/dev/null 2>&1 || return 0
    sleep 0.2
  done
  fail "$1 $2 is still there"
}
expect data volume create --size 1 data
wait_status volume data available
expect bootable volume create --size 1 --image cirros-0.6.2-x86_64-disk boot-vol
wait_status volume boot-vol available
expect true volume show boot-vol -f value -c bootable
vol_data=$(os volume show data -f value -c id) || fail "volume show data"
vol_boot=$(os volume show boot-vol -f value -c id) || fail "volume show boot-vol"
files=$(ls "$work"/data/*/volumes/volumes/"$vol_data".raw 2>/dev/null | wc -l)
[ "$files" = 1 ] || fail "volume data is in $files cells' backends, not one"
[ "$(stat -c %s "$work"/data/*/volumes/volumes/"$vol_data".raw)" = 1073741824 ] || fail "volume data's file is not 1 GiB"
image_file="$work/data/api/images/$(os image show cirros-0.6.2-x86_64-disk -f value -c id)"
size=$(stat -c %s "$image_file")
cmp -n "$size" "$image_file" "$work"/data/*/volumes/volumes/"$vol_boot".raw >/dev/null 2>&1 || fail "boot-vol does not start with the image's bytes"
echo "ok   the volumes' bytes are on disk in their cells (boot-vol starts with the image's $size bytes)"
expect boot-vol volume list
expect snap1 volume snapshot create --volume data snap1
wait_status "volume snapshot" snap1 available
expect snap1 volume snapshot list
out=$(os volume delete data 2>&1) && fail "a volume with a snapshot was deleted: $out"
echo "ok   openstack volume delete of a volume with a snapshot (refused)"
os volume snapshot delete snap1 || fail "volume snapshot delete"
wait_gone "volume snapshot" snap1
os volume delete data boot-vol || fail "volume delete"
wait_gone volume data
wait_gone volume boot-vol
ls "$work"/data/*/volumes/volumes/"$vol_data".raw >/dev/null 2>&1 && fail "volume data's file is left"
echo "ok   openstack volume delete data boot-vol (files gone)"
# A server and a volume of its cell (Cinder's local_to_instance hint: no
# move on attach): attached as /dev/vdb,
# in-use, listed with the server, detached, available again.
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --network private --wait vm-vol
vm_vol=$(os server show vm-vol -f value -c id) || fail "server show vm-vol"
expect vdata volume create --size 1 --hint "local_to_instance=$vm_vol" vdata
wait_status volume vdata available
vol_vdata=$(os volume show vdata -f value -c id) || fail "volume show vdata"
os server add volume vm-vol vdata >/dev/null || fail "server add volume"
wait_status volume vdata in-use
expect /dev/vdb server volume list vm-vol
expect "$vol_vdata" server show vm-vol -f value -c volumes_attached
echo "ok   openstack server add volume vm-vol vdata (/dev/vdb, in-use)"
# Extended while attached (Block Storage 3.42): in-use again at 2 GiB,
# its file grown on disk, still attached.
os --os-volume-api-version 3.42 volume set --size 2 vdata || fail "volume set --size 2 of an attached volume"
for _ in $(seq 1 150); do
  [ "$(os volume show vdata -f value -c status -c size | paste -sd' ')" = "2 in-use" ] && break
  sleep 0.2
done
[ "$(os volume show vdata -f value -c status -c size | paste -sd' ')" = "2 in-use" ] || fail "vdata after the online extend: $(os volume show vdata -f value -c status -c size)"
[ "$(stat -c %s "$work"/data/*/volumes/volumes/"$vol_vdata".raw)" = $((2 << 30)) ] || fail "vdata's file is not 2 GiB"
expect /dev/vdb server volume list vm-vol
echo "ok   openstack --os-volume-api-version 3.42 volume set --size 2 of an attached volume (in-use, 2 GiB on disk)"
out=$(os volume delete vdata 2>&1) && fail "an attached volume was deleted: $out"
echo "ok   openstack volume delete of an attached volume (refused)"
os server remove volume vm-vol vdata || fail "server remove volume"
wait_status volume vdata available
echo "ok   openstack server remove volume vm-vol vdata (available)"
# A volume made with no hint lands in either cell (both are zone nova):
# its attach moves it to the server's cell (vdata's) first, its bytes
# with it, as in a single-zone OpenStack cloud where the attach works.
expect vfree volume create --size 1 vfree
wait_status volume vfree available
vol_vfree=$(os volume show vfree -f value -c id) || fail "volume show vfree"
os server add volume vm-vol vfree >/dev/null || fail "server add volume of a volume made with no hint"
wait_status volume vfree in-use
expect /dev/vdb server volume list vm-vol
vm_cell_dir=$(dirname "$(ls "$work"/data/*/volumes/volumes/"$vol_vdata".raw)")
[ -f "$vm_cell_dir/$vol_vfree.raw" ] || fail "the attached volume is not in the server's cell"
[ "$(ls "$work"/data/*/volumes/volumes/"$vol_vfree".raw | wc -l)" = 1 ] || fail "the attached volume is in more than one cell"
echo "ok   openstack server add volume vm-vol vfree (made with no hint: in the server's cell, in-use)"
os server remove volume vm-vol vfree || fail "server remove volume vfree"
wait_status volume vfree available
os volume delete vfree || fail "volume delete vfree"
wait_gone volume vfree
os server delete --wait vm-vol || fail "server delete vm-vol"
os volume delete vdata || fail "volume delete vdata"
wait_gone volume vdata
echo "ok   openstack server delete vm-vol, volume delete vdata"
# Boot from volume: the root volume is made from the image in the cell
# that builds the server, in-use while it runs, kept when it goes (the
# CLI does not ask for delete_on_termination).
expect ACTIVE server create --flavor m1.tiny --image cirros-0.6.2-x86_64-disk --boot-from-volume 1 --network private --wait vm-bfv
root_vol=$(os server show vm-bfv -f json -c volumes_attached | python3 -c 'import json,sys; print(json.load(sys.stdin)["volumes_attached"][0]["id"])') || fail "vm-bfv has no volume"
wait_status volume "$root_vol" in-use
expect true volume show "$root_vol" -f value -c bootable
[ "$(ls "$work"/data/*/volumes/volumes/"$root_vol".raw 2>/dev/null | wc -l)" = 1 ] || fail "the root volume is not on disk in one cell"
cmp -n "$size" "$image_file" "$work"/data/*/volumes/volumes/"$root_vol".raw >/dev/null 2>&1 || fail "the root volume does not start with the image's bytes"
echo "ok   openstack server create --boot-from-volume 1 (root volume in-use, the image's bytes on disk)"
os server delete --wait vm-bfv || fail "server delete vm-bfv"
wait_status volume "$root_vol" available
os volume delete "$root_vol" || fail "volume delete of the root volume"
wait_gone volume "$root_vol"
echo "ok   openstack server delete vm-bfv keeps its root volume, then volume delete"
as admin
expect cinder-volume volume service list
expect nova availability zone list --volume
as admin
os token revoke "$(os token issue -f value -c id)" || fail "token revoke"
echo "ok   openstack token revoke"
os server delete --wait admin-vm || fail "server delete admin-vm"
echo "cli.sh: PASS"
