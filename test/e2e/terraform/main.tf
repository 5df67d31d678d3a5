# The configuration test/e2e/terraform.sh applies, changes and destroys
# against `cellcloud up` (issue 14's done criterion): a network, a /28
# subnet, a security group with two rules, a port with a fixed IP, and a
# server booted on that port. The provider reads the OS_* variables of an
# openrc file.
#
# with_ports = false (the default until ports can be created) boots the
# server on boot_network with the group by name instead of on the port.

terraform {
  required_providers {
    openstack = {
      source = "terraform-provider-openstack/openstack"
    }
  }
}

provider "openstack" {}

variable "prefix" {
  type    = string
  default = "tf-e2e"
}

variable "with_ports" {
  type    = bool
  default = false
}

variable "boot_network" {
  description = "the network (by name) the server boots on when with_ports is false, and the peers; \"\" is the test network"
  type        = string
  default     = "private"
}

variable "server_name" {
  type    = string
  default = "tf-e2e-vm"
}

variable "port_name" {
  type    = string
  default = "tf-e2e-port"
}

variable "tag" {
  description = "a tag on the network, subnet and group (changed by the change step)"
  type        = string
  default     = "e2e"
}

variable "extra_rule" {
  description = "adds a third rule (tcp 80 from 10.0.0.0/8): the change step"
  type        = bool
  default     = false
}

variable "peers" {
  description = "more servers in the group, on boot_network, so that the group has members in more than one cell"
  type        = number
  default     = 3
}

variable "image_name" {
  type    = string
  default = "cirros-0.6.2-x86_64-disk"
}

variable "volume_name" {
  description = "the data volume's name (changed by the change step)"
  type        = string
  default     = "tf-e2e-data"
}

variable "volume_size" {
  description = "the data volume's size in GiB (grown by the change step: an extend of an attached volume)"
  type        = number
  default     = 1
}

resource "openstack_networking_network_v2" "net" {
  name           = "${var.prefix}-net"
  admin_state_up = true
  tags           = [var.tag]
}

resource "openstack_networking_subnet_v2" "sub" {
  name       = "${var.prefix}-sub"
  network_id = openstack_networking_network_v2.net.id
  cidr       = "192.168.77.0/28"
  ip_version = 4
  tags       = [var.tag, "subnet"]
}

resource "openstack_networking_secgroup_v2" "sg" {
  name        = "${var.prefix}-sg"
  description = "terraform e2e"
  tags        = [var.tag]
}

resource "openstack_networking_secgroup_rule_v2" "ssh" {
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 22
  port_range_max    = 22
  remote_ip_prefix  = "0.0.0.0/0"
  security_group_id = openstack_networking_secgroup_v2.sg.id
}

resource "openstack_networking_secgroup_rule_v2" "icmp" {
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "icmp"
  remote_group_id   = openstack_networking_secgroup_v2.sg.id
  security_group_id = openstack_networking_secgroup_v2.sg.id
}

resource "openstack_networking_secgroup_rule_v2" "http" {
  count             = var.extra_rule ? 1 : 0
  direction         = "ingress"
  ethertype         = "IPv4"
  protocol          = "tcp"
  port_range_min    = 80
  port_range_max    = 80
  remote_ip_prefix  = "10.0.0.0/8"
  security_group_id = openstack_networking_secgroup_v2.sg.id
}

resource "openstack_networking_port_v2" "port" {
  count              = var.with_ports ? 1 : 0
  name               = var.port_name
  network_id         = openstack_networking_network_v2.net.id
  admin_state_up     = true
  security_group_ids = [openstack_networking_secgroup_v2.sg.id]
  fixed_ip {
    subnet_id  = openstack_networking_subnet_v2.sub.id
    ip_address = "192.168.77.5"
  }
}

resource "openstack_compute_instance_v2" "vm" {
  name            = var.server_name
  image_name      = var.image_name
  flavor_name     = "m1.tiny"
  security_groups = var.with_ports ? null : [openstack_networking_secgroup_v2.sg.name]

  dynamic "network" {
    for_each = var.with_ports ? [1] : []
    content {
      port = openstack_networking_port_v2.port[0].id
    }
  }
  dynamic "network" {
    for_each = var.with_ports ? [] : [1]
    content {
      uuid = var.boot_network == "" ? openstack_networking_network_v2.net.id : null
      name = var.boot_network == "" ? null : var.boot_network
    }
  }
  # The rules are the group's; the server waits for them so that it
  # boots with its group complete.
  depends_on = [openstack_networking_subnet_v2.sub, openstack_networking_secgroup_rule_v2.ssh, openstack_networking_secgroup_rule_v2.icmp]
}

resource "openstack_compute_instance_v2" "peer" {
  count           = var.peers
  name            = "${var.prefix}-peer-${count.index}"
  image_name      = var.image_name
  flavor_name     = "m1.tiny"
  security_groups = [openstack_networking_secgroup_v2.sg.name]
  network {
    uuid = var.boot_network == "" ? openstack_networking_network_v2.net.id : null
    name = var.boot_network == "" ? null : var.boot_network
  }
  depends_on = [openstack_networking_subnet_v2.sub, openstack_networking_secgroup_rule_v2.ssh, openstack_networking_secgroup_rule_v2.icmp]
}

# Volumes (issue 16): a blank data volume attached to the server, a volume
# made from the image, and a server booted from a volume made from the
# image (deleted with it).
data "openstack_images_image_v2" "img" {
  name        = var.image_name
  most_recent = true
}

resource "openstack_blockstorage_volume_v3" "data" {
  name        = var.volume_name
  size        = var.volume_size
  description = "attached to ${var.prefix}-vm"
  # The change step grows it while attached (Block Storage 3.42).
  enable_online_resize = true
  metadata = {
    tag = var.tag
  }
}

resource "openstack_blockstorage_volume_v3" "from_image" {
  name     = "${var.prefix}-from-image"
  size     = 1
  image_id = data.openstack_images_image_v2.img.id
}

resource "openstack_compute_volume_attach_v2" "data" {
  instance_id = openstack_compute_instance_v2.vm.id
  volume_id   = openstack_blockstorage_volume_v3.data.id
}

resource "openstack_compute_instance_v2" "bfv" {
  name        = "${var.prefix}-bfv"
  flavor_name = "m1.tiny"
  network {
    uuid = var.boot_network == "" ? openstack_networking_network_v2.net.id : null
    name = var.boot_network == "" ? null : var.boot_network
  }
  block_device {
    uuid                  = data.openstack_images_image_v2.img.id
    source_type           = "image"
    destination_type      = "volume"
    volume_size           = 1
    boot_index            = 0
    delete_on_termination = true
  }
  depends_on = [openstack_networking_subnet_v2.sub]
}

output "network_id" { value = openstack_networking_network_v2.net.id }
output "subnet_id" { value = openstack_networking_subnet_v2.sub.id }
output "subnet_cidr" { value = openstack_networking_subnet_v2.sub.cidr }
output "secgroup_id" { value = openstack_networking_secgroup_v2.sg.id }
output "server_id" { value = openstack_compute_instance_v2.vm.id }
output "server_name" { value = openstack_compute_instance_v2.vm.name }
output "server_ip" { value = openstack_compute_instance_v2.vm.access_ip_v4 }
output "server_power_state" { value = openstack_compute_instance_v2.vm.power_state }
output "peer_ids" { value = openstack_compute_instance_v2.peer[*].id }
output "port_id" { value = var.with_ports ? openstack_networking_port_v2.port[0].id : "" }
output "port_ip" { value = var.with_ports ? openstack_networking_port_v2.port[0].all_fixed_ips[0] : "" }
output "volume_id" { value = openstack_blockstorage_volume_v3.data.id }
output "volume_attachment_device" { value = openstack_compute_volume_attach_v2.data.device }
output "from_image_volume_id" { value = openstack_blockstorage_volume_v3.from_image.id }
output "bfv_id" { value = openstack_compute_instance_v2.bfv.id }
