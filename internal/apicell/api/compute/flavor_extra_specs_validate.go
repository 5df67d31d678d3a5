package compute

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// Validation of known flavor extra specs (microversion 2.86), Nova's
// nova/api/validation/extra_specs: a rule per extra spec Nova knows, as
// data. A rule's name may hold {parameters}, each replaced by its pattern
// (so "hw:numa_cpus.{num}" matches "hw:numa_cpus.0"; like Nova's, the
// rest of the name is a regular expression too). A key is checked by the
// first rule whose name it matches; a key that matches none passes, unless
// it has a namespace (the part before the first ':') that a rule's name
// has, which is a 400. Values are text (a number given is checked as
// Python's str of it) and are checked as integers (Python's int()), as
// booleans (oslo's strict bool_from_string) or as text (a pattern or an
// enumeration). The rules are Nova's at the time of writing, with the
// powervm ones that Nova 2.86 had and later dropped with its driver.

// specKind is the type of a value Nova's validator names.
type specKind uint8

const (
	specText specKind = iota
	specInteger
	specBoolean
)

// specValue is what a rule accepts.
type specValue struct {
	kind specKind
	// pattern (text): the whole value must match it. It is Nova's
	// Python expression, quoted as is in the message.
	pattern string
	// enum (text): the value must be one of these.
	enum []string
	// min and max (integers): the bounds, when set.
	min, max *int64
}

// specParam is a parameter of a rule's name and the pattern it stands for.
type specParam struct{ name, pattern string }

// extraSpecRule is one of Nova's extra spec validators.
type extraSpecRule struct {
	name   string
	params []specParam
	value  specValue
}

var (
	anyString = specValue{kind: specText}
	anyInt    = specValue{kind: specInteger}
	specBool  = specValue{kind: specBoolean}
)

func matching(pattern string) specValue { return specValue{kind: specText, pattern: pattern} }
func oneOf(values ...string) specValue  { return specValue{kind: specText, enum: values} }
func intMin(lo int64) specValue         { return specValue{kind: specInteger, min: &lo} }
func intRange(lo, hi int64) specValue {
	return specValue{kind: specInteger, min: &lo, max: &hi}
}

// alternation is a pattern that matches any of names exactly.
func alternation(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return strings.Join(quoted, "|")
}

// extraSpecRules are Nova's validators, in the order Nova loads them
// (its entry points: accel, aggregate_instance_extra_specs, capabilities,
// hw, hw_rng, hw_video, null, os, pci_passthrough, powervm, quota,
// resources, traits, vmware). The standard resource classes and traits,
// a rule each in Nova, are one rule each here, with the same checks.
func extraSpecRules() []extraSpecRule {
	return []extraSpecRule{
		// accel
		{name: "accel:device_profile", value: anyString},
		// aggregate_instance_extra_specs
		{name: "aggregate_instance_extra_specs:{key}", params: []specParam{{"key", ".+"}}, value: anyString},
		// capabilities
		{name: "capabilities:id", value: anyString},
		{name: "capabilities:uuid", value: anyString},
		{name: "capabilities:service_id", value: anyString},
		{name: "capabilities:host", value: anyString},
		{name: "capabilities:vcpus", value: anyString},
		{name: "capabilities:memory_mb", value: anyString},
		{name: "capabilities:local_gb", value: anyString},
		{name: "capabilities:vcpus_used", value: anyString},
		{name: "capabilities:memory_mb_used", value: anyString},
		{name: "capabilities:local_gb_used", value: anyString},
		{name: "capabilities:hypervisor_type", value: anyString},
		{name: "capabilities:hypervisor_version", value: anyString},
		{name: "capabilities:hypervisor_hostname", value: anyString},
		{name: "capabilities:free_ram_mb", value: anyString},
		{name: "capabilities:free_disk_gb", value: anyString},
		{name: "capabilities:current_workload", value: anyString},
		{name: "capabilities:running_vms", value: anyString},
		{name: "capabilities:disk_available_least", value: anyString},
		{name: "capabilities:host_ip", value: anyString},
		{name: "capabilities:mapped", value: anyString},
		{name: "capabilities:cpu_allocation_ratio", value: anyString},
		{name: "capabilities:ram_allocation_ratio", value: anyString},
		{name: "capabilities:disk_allocation_ratio", value: anyString},
		{name: "capabilities:total_usable_ram_mb", value: anyString},
		{name: "capabilities:total_usable_disk_gb", value: anyString},
		{name: "capabilities:disk_mb_used", value: anyString},
		{name: "capabilities:free_disk_mb", value: anyString},
		{name: "capabilities:vcpus_total", value: anyString},
		{name: "capabilities:num_instances", value: anyString},
		{name: "capabilities:num_io_ops", value: anyString},
		{name: "capabilities:failed_builds", value: anyString},
		{name: "capabilities:aggregates", value: anyString},
		{name: "capabilities:cell_uuid", value: anyString},
		{name: "capabilities:updated", value: anyString},
		{name: "capabilities:cpu_info{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:metrics{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:stats{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:numa_topology{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:supported_hv_specs{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:pci_device_pools{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:nodename{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:pci_stats{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:supported_instances{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:limits{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		{name: "capabilities:instances{filter}", params: []specParam{{"filter", `(:\w+)*`}}, value: anyString},
		// hw
		{name: "hw:cpu_realtime", value: specBool},
		{name: "hw:cpu_realtime_mask", value: matching(`(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`)},
		{name: "hw:hide_hypervisor_id", value: specBool},
		{name: "hw:cpu_policy", value: oneOf("dedicated", "shared", "mixed")},
		{name: "hw:cpu_thread_policy", value: oneOf("prefer", "isolate", "require")},
		{name: "hw:emulator_threads_policy", value: oneOf("isolate", "share")},
		{name: "hw:cpu_dedicated_mask", value: matching(`\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`)},
		{name: "hw:mem_page_size", value: matching(`(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)`)},
		{name: "hw:locked_memory", value: specBool},
		{name: "hw:numa_nodes", value: intMin(1)},
		{name: "hw:numa_cpus.{num}", params: []specParam{{"num", `\d+`}}, value: matching(`\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`)},
		{name: "hw:numa_mem.{num}", params: []specParam{{"num", `\d+`}}, value: intMin(1)},
		{name: "hw:pci_numa_affinity_policy", value: oneOf("required", "preferred", "legacy", "socket")},
		{name: "hw:cpu_sockets", value: intMin(1)},
		{name: "hw:cpu_cores", value: intMin(1)},
		{name: "hw:cpu_threads", value: intMin(1)},
		{name: "hw:cpu_max_sockets", value: intMin(1)},
		{name: "hw:cpu_max_cores", value: intMin(1)},
		{name: "hw:cpu_max_threads", value: intMin(1)},
		{name: "hw:boot_menu", value: specBool},
		{name: "hw:vif_multiqueue_enabled", value: specBool},
		{name: "hw:mem_encryption", value: specBool},
		{name: "hw:mem_encryption_model", value: oneOf("amd-sev", "amd-sev-es", "amd-sev-snp")},
		{name: "hw:pmem", value: matching("([a-zA-Z0-9_]+(,)?)+")},
		{name: "hw:pmu", value: specBool},
		{name: "hw:serial_port_count", value: intMin(0)},
		{name: "hw:tpm_model", value: oneOf("tpm-tis", "tpm-crb")},
		{name: "hw:tpm_version", value: oneOf("1.2", "2.0")},
		{name: "hw:tpm_secret_security", value: oneOf("user", "host", "deployment")},
		{name: "hw:watchdog_action", value: oneOf("none", "pause", "poweroff", "reset", "disabled")},
		{name: "hw:viommu_model", value: oneOf("intel", "smmuv3", "virtio", "auto")},
		{name: "hw:virtio_packed_ring", value: specBool},
		{name: "hw:sound_model", value: oneOf("sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio")},
		{name: "hw:usb_model", value: oneOf("none", "nec-xhci", "qemu-xhci")},
		{name: "hw:redirected_usb_ports", value: intRange(0, 15)},
		{name: "hw:ephemeral_encryption", value: specBool},
		{name: "hw:ephemeral_encryption_format", value: oneOf("plain", "luks", "luksv2")},
		// hw_rng
		{name: "hw_rng:allowed", value: specBool},
		{name: "hw_rng:rate_bytes", value: intMin(0)},
		{name: "hw_rng:rate_period", value: intMin(0)},
		// hw_video
		{name: "hw_video:ram_max_mb", value: intMin(0)},
		// null
		{name: "hide_hypervisor_id", value: specBool},
		{name: "group_policy", value: oneOf("isolate", "none")},
		// os
		{name: "os:secure_boot", value: oneOf("disabled", "required")},
		// pci_passthrough
		{name: "pci_passthrough:alias", value: matching(`[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*`)},
		// powervm
		{name: "powervm:min_mem", value: intMin(256)},
		{name: "powervm:max_mem", value: intMin(256)},
		{name: "powervm:min_vcpu", value: intMin(1)},
		{name: "powervm:max_vcpu", value: intMin(1)},
		{name: "powervm:proc_units", value: matching(`\d+\.\d+`)},
		{name: "powervm:min_proc_units", value: matching(`\d+\.\d+`)},
		{name: "powervm:max_proc_units", value: matching(`\d+\.\d+`)},
		{name: "powervm:dedicated_proc", value: specBool},
		{name: "powervm:shared_weight", value: intRange(0, 255)},
		{name: "powervm:availability_priority", value: intRange(0, 255)},
		{name: "powervm:uncapped", value: specBool},
		{name: "powervm:dedicated_sharing_mode", value: oneOf("share_idle_procs", "keep_idle_procs", "share_idle_procs_active", "share_idle_procs_always")},
		{name: "powervm:processor_compatibility", value: oneOf("default", "POWER6", "POWER6+", "POWER6_Enhanced", "POWER6+_Enhanced", "POWER7", "POWER8")},
		{name: "powervm:shared_proc_pool_name", value: anyString},
		{name: "powervm:srr_capability", value: specBool},
		// quota
		{name: "quota:cpu_limit", value: intMin(0)},
		{name: "quota:cpu_reservation", value: anyInt},
		{name: "quota:cpu_shares_level", value: oneOf("custom", "high", "normal", "low")},
		{name: "quota:cpu_shares_share", value: intMin(0)},
		{name: "quota:memory_limit", value: intMin(0)},
		{name: "quota:memory_reservation", value: anyInt},
		{name: "quota:memory_shares_level", value: oneOf("custom", "high", "normal", "low")},
		{name: "quota:memory_shares_share", value: intMin(0)},
		{name: "quota:disk_io_limit", value: intMin(0)},
		{name: "quota:disk_io_reservation", value: anyInt},
		{name: "quota:disk_io_shares_level", value: oneOf("custom", "high", "normal", "low")},
		{name: "quota:disk_io_shares_share", value: intMin(0)},
		{name: "quota:vif_limit", value: intMin(0)},
		{name: "quota:vif_reservation", value: anyInt},
		{name: "quota:vif_shares_level", value: oneOf("custom", "high", "normal", "low")},
		{name: "quota:vif_shares_share", value: intMin(0)},
		{name: "quota:cpu_shares", value: intMin(0)},
		{name: "quota:cpu_period", value: intMin(0)},
		{name: "quota:cpu_quota", value: anyInt},
		{name: "quota:disk_read_bytes_sec", value: intMin(0)},
		{name: "quota:disk_read_iops_sec", value: intMin(0)},
		{name: "quota:disk_write_bytes_sec", value: intMin(0)},
		{name: "quota:disk_write_iops_sec", value: intMin(0)},
		{name: "quota:disk_total_bytes_sec", value: intMin(0)},
		{name: "quota:disk_total_iops_sec", value: intMin(0)},
		{name: "quota:vif_inbound_average", value: intMin(0)},
		{name: "quota:vif_inbound_peak", value: intMin(0)},
		{name: "quota:vif_inbound_burst", value: intMin(0)},
		{name: "quota:vif_outbound_average", value: intMin(0)},
		{name: "quota:vif_outbound_peak", value: intMin(0)},
		{name: "quota:vif_outbound_burst", value: intMin(0)},
		// resources
		{name: "resources{group}:{resource}", params: []specParam{{"group", `([a-zA-Z0-9_-]{1,64})?`}, {"resource", alternation(standardResourceClasses)}}, value: anyInt},
		{name: "resources{group}:CUSTOM_{resource}", params: []specParam{{"group", "([a-zA-Z0-9_-]{1,64})?"}, {"resource", "[A-Z0-9_]+"}}, value: anyInt},
		// traits
		{name: "trait{group}:{trait}", params: []specParam{{"group", `([a-zA-Z0-9_-]{1,64})?`}, {"trait", alternation(standardTraits)}}, value: oneOf("required", "forbidden")},
		{name: "trait{group}:CUSTOM_{trait}", params: []specParam{{"group", "([a-zA-Z0-9_-]{1,64})?"}, {"trait", "[A-Z0-9_]+"}}, value: oneOf("required", "forbidden")},
		// vmware
		{name: "vmware:hw_version", value: anyString},
		{name: "vmware:storage_policy", value: anyString},
	}
}

// standardResourceClasses are os-resource-classes' STANDARDS.
var standardResourceClasses = []string{
	"VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_SOCKET", "NUMA_CORE",
	"NUMA_THREAD", "NUMA_MEMORY_MB", "IPV4_ADDRESS", "VGPU", "VGPU_DISPLAY_HEAD",
	"NET_BW_EGR_KILOBIT_PER_SEC", "NET_BW_IGR_KILOBIT_PER_SEC", "PCPU", "MEM_ENCRYPTION_CONTEXT",
	"FPGA", "PGPU", "NET_PACKET_RATE_KILOPACKET_PER_SEC", "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
	"NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
}

// standardTraits are os-traits' get_traits().
var standardTraits = []string{
	"COMPUTE_DEVICE_TAGGING", "COMPUTE_NODE", "COMPUTE_TRUSTED_CERTS",
	"COMPUTE_SAME_HOST_COLD_MIGRATE", "COMPUTE_RESCUE_BFV", "COMPUTE_ACCELERATORS",
	"COMPUTE_SOCKET_PCI_NUMA_AFFINITY", "COMPUTE_REMOTE_MANAGED_PORTS", "COMPUTE_MEM_BACKING_FILE",
	"COMPUTE_MANAGED_PCI_DEVICE", "COMPUTE_ADDRESS_SPACE_PASSTHROUGH",
	"COMPUTE_ADDRESS_SPACE_EMULATED", "COMPUTE_SHARE_LOCAL_FS", "COMPUTE_ARCH_AARCH64",
	"COMPUTE_ARCH_PPC64LE", "COMPUTE_ARCH_MIPSEL", "COMPUTE_ARCH_S390X", "COMPUTE_ARCH_RISCV64",
	"COMPUTE_ARCH_X86_64", "COMPUTE_CONFIG_DRIVE_REGENERATION", "COMPUTE_EPHEMERAL_ENCRYPTION",
	"COMPUTE_EPHEMERAL_ENCRYPTION_PLAIN", "COMPUTE_EPHEMERAL_ENCRYPTION_LUKS",
	"COMPUTE_EPHEMERAL_ENCRYPTION_LUKSV2", "COMPUTE_FIRMWARE_BIOS", "COMPUTE_FIRMWARE_UEFI",
	"COMPUTE_GRAPHICS_MODEL_BOCHS", "COMPUTE_GRAPHICS_MODEL_CIRRUS", "COMPUTE_GRAPHICS_MODEL_GOP",
	"COMPUTE_GRAPHICS_MODEL_NONE", "COMPUTE_GRAPHICS_MODEL_QXL", "COMPUTE_GRAPHICS_MODEL_VGA",
	"COMPUTE_GRAPHICS_MODEL_VIRTIO", "COMPUTE_GRAPHICS_MODEL_VMVGA", "COMPUTE_GRAPHICS_MODEL_XEN",
	"COMPUTE_IMAGE_TYPE_AKI", "COMPUTE_IMAGE_TYPE_AMI", "COMPUTE_IMAGE_TYPE_ARI",
	"COMPUTE_IMAGE_TYPE_ISO", "COMPUTE_IMAGE_TYPE_QCOW2", "COMPUTE_IMAGE_TYPE_RAW",
	"COMPUTE_IMAGE_TYPE_VDI", "COMPUTE_IMAGE_TYPE_VHD", "COMPUTE_IMAGE_TYPE_VHDX",
	"COMPUTE_IMAGE_TYPE_VMDK", "COMPUTE_IMAGE_TYPE_PLOOP", "COMPUTE_MIGRATE_AUTO_CONVERGE",
	"COMPUTE_MIGRATE_POST_COPY", "COMPUTE_NET_ATTACH_INTERFACE",
	"COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG", "COMPUTE_NET_VIRTIO_PACKED",
	"COMPUTE_NET_VIF_MODEL_E1000", "COMPUTE_NET_VIF_MODEL_E1000E", "COMPUTE_NET_VIF_MODEL_LAN9118",
	"COMPUTE_NET_VIF_MODEL_NETFRONT", "COMPUTE_NET_VIF_MODEL_NE2K_PCI", "COMPUTE_NET_VIF_MODEL_PCNET",
	"COMPUTE_NET_VIF_MODEL_RTL8139", "COMPUTE_NET_VIF_MODEL_SPAPR_VLAN",
	"COMPUTE_NET_VIF_MODEL_SRIOV", "COMPUTE_NET_VIF_MODEL_VIRTIO", "COMPUTE_NET_VIF_MODEL_VMXNET",
	"COMPUTE_NET_VIF_MODEL_VMXNET3", "COMPUTE_NET_VIF_MODEL_IGB", "COMPUTE_SECURITY_TPM_1_2",
	"COMPUTE_SECURITY_TPM_2_0", "COMPUTE_SECURITY_TPM_TIS", "COMPUTE_SECURITY_TPM_CRB",
	"COMPUTE_SECURITY_TPM_SECRET_SECURITY_USER", "COMPUTE_SECURITY_TPM_SECRET_SECURITY_HOST",
	"COMPUTE_SECURITY_TPM_SECRET_SECURITY_DEPLOYMENT", "COMPUTE_SECURITY_UEFI_SECURE_BOOT",
	"COMPUTE_SECURITY_STATELESS_FIRMWARE", "COMPUTE_SOUND_MODEL_SB16", "COMPUTE_SOUND_MODEL_ES1370",
	"COMPUTE_SOUND_MODEL_PCSPK", "COMPUTE_SOUND_MODEL_AC97", "COMPUTE_SOUND_MODEL_ICH6",
	"COMPUTE_SOUND_MODEL_ICH9", "COMPUTE_SOUND_MODEL_USB", "COMPUTE_SOUND_MODEL_VIRTIO",
	"COMPUTE_STATUS_DISABLED", "COMPUTE_STORAGE_BUS_FDC", "COMPUTE_STORAGE_BUS_IDE",
	"COMPUTE_STORAGE_BUS_LXC", "COMPUTE_STORAGE_BUS_SATA", "COMPUTE_STORAGE_BUS_SCSI",
	"COMPUTE_STORAGE_BUS_USB", "COMPUTE_STORAGE_BUS_VIRTIO", "COMPUTE_STORAGE_BUS_UML",
	"COMPUTE_STORAGE_BUS_XEN", "COMPUTE_STORAGE_VIRTIO_FS", "COMPUTE_USB_MODEL_QEMU_XHCI",
	"COMPUTE_USB_MODEL_NEC_XHCI", "COMPUTE_VIOMMU_MODEL_INTEL", "COMPUTE_VIOMMU_MODEL_SMMUV3",
	"COMPUTE_VIOMMU_MODEL_VIRTIO", "COMPUTE_VIOMMU_MODEL_AUTO", "COMPUTE_VOLUME_ATTACH",
	"COMPUTE_VOLUME_ATTACH_WITH_TAG", "COMPUTE_VOLUME_EXTEND", "COMPUTE_VOLUME_MULTI_ATTACH",
	"HW_ARCH_ALPHA", "HW_ARCH_ARMV6", "HW_ARCH_ARMV7", "HW_ARCH_ARMV7B", "HW_ARCH_AARCH64",
	"HW_ARCH_CRIS", "HW_ARCH_I686", "HW_ARCH_IA64", "HW_ARCH_LM32", "HW_ARCH_M68K",
	"HW_ARCH_MICROBLAZE", "HW_ARCH_MICROBLAZEEL", "HW_ARCH_MIPS", "HW_ARCH_MIPSEL", "HW_ARCH_MIPS64",
	"HW_ARCH_MIPS64EL", "HW_ARCH_OPENRISC", "HW_ARCH_PARISC", "HW_ARCH_PARISC64", "HW_ARCH_PPC",
	"HW_ARCH_PPCLE", "HW_ARCH_PPC64", "HW_ARCH_PPC64LE", "HW_ARCH_PPCEMB", "HW_ARCH_S390",
	"HW_ARCH_S390X", "HW_ARCH_SH4", "HW_ARCH_SH4EB", "HW_ARCH_SPARC", "HW_ARCH_SPARC64",
	"HW_ARCH_UNICORE32", "HW_ARCH_X86_64", "HW_ARCH_XTENSA", "HW_ARCH_XTENSAEB",
	"HW_CPU_HYPERTHREADING", "HW_CPU_AARCH64_FP", "HW_CPU_AARCH64_ASIMD", "HW_CPU_AARCH64_EVTSTRM",
	"HW_CPU_AARCH64_AES", "HW_CPU_AARCH64_PMULL", "HW_CPU_AARCH64_SHA1", "HW_CPU_AARCH64_SHA2",
	"HW_CPU_AARCH64_CRC32", "HW_CPU_AARCH64_FPHP", "HW_CPU_AARCH64_ASIMDHP",
	"HW_CPU_AARCH64_ASIMDRDM", "HW_CPU_AARCH64_ATOMICS", "HW_CPU_AARCH64_JSCVT",
	"HW_CPU_AARCH64_FCMA", "HW_CPU_AARCH64_LRCPC", "HW_CPU_AARCH64_DCPOP", "HW_CPU_AARCH64_SHA3",
	"HW_CPU_AARCH64_SM3", "HW_CPU_AARCH64_SM4", "HW_CPU_AARCH64_ASIMDDP", "HW_CPU_AARCH64_SHA512",
	"HW_CPU_AARCH64_SVE", "HW_CPU_AARCH64_CPUID", "HW_CPU_AMD_SEV", "HW_CPU_PPC64LE_POWER8",
	"HW_CPU_PPC64LE_POWER9", "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2", "HW_CPU_X86_CLMUL",
	"HW_CPU_X86_FMA3", "HW_CPU_X86_FMA4", "HW_CPU_X86_F16C", "HW_CPU_X86_MMX", "HW_CPU_X86_SSE",
	"HW_CPU_X86_SSE2", "HW_CPU_X86_SSE3", "HW_CPU_X86_SSSE3", "HW_CPU_X86_SSE41", "HW_CPU_X86_SSE42",
	"HW_CPU_X86_SSE4A", "HW_CPU_X86_XOP", "HW_CPU_X86_3DNOW", "HW_CPU_X86_AVX512F",
	"HW_CPU_X86_AVX512CD", "HW_CPU_X86_AVX512PF", "HW_CPU_X86_AVX512ER", "HW_CPU_X86_AVX512VL",
	"HW_CPU_X86_AVX512BW", "HW_CPU_X86_AVX512DQ", "HW_CPU_X86_AVX512VNNI", "HW_CPU_X86_AVX512VBMI",
	"HW_CPU_X86_AVX512IFMA", "HW_CPU_X86_AVX512VBMI2", "HW_CPU_X86_AVX512BITALG",
	"HW_CPU_X86_AVX512VAES", "HW_CPU_X86_AVX512GFNI", "HW_CPU_X86_AVX512VPCLMULQDQ",
	"HW_CPU_X86_AVX512VPOPCNTDQ", "HW_CPU_X86_ABM", "HW_CPU_X86_BMI", "HW_CPU_X86_BMI2",
	"HW_CPU_X86_TBM", "HW_CPU_X86_AESNI", "HW_CPU_X86_SHA", "HW_CPU_X86_MPX", "HW_CPU_X86_SGX",
	"HW_CPU_X86_TSX", "HW_CPU_X86_ASF", "HW_CPU_X86_VMX", "HW_CPU_X86_SVM", "HW_CPU_X86_PDPE1GB",
	"HW_CPU_X86_STIBP", "HW_CPU_X86_AMXBF16", "HW_CPU_X86_AMXINT8", "HW_CPU_X86_AMXTILE",
	"HW_CPU_X86_AMD_SEV", "HW_CPU_X86_AMD_SEV_ES", "HW_CPU_X86_AMD_SEV_SNP", "HW_CPU_X86_AMD_SVM",
	"HW_CPU_X86_AMD_IBPB", "HW_CPU_X86_AMD_NO_SSB", "HW_CPU_X86_AMD_SSBD", "HW_CPU_X86_AMD_VIRT_SSBD",
	"HW_CPU_X86_INTEL_MD_CLEAR", "HW_CPU_X86_INTEL_PCID", "HW_CPU_X86_INTEL_SPEC_CTRL",
	"HW_CPU_X86_INTEL_SSBD", "HW_CPU_X86_INTEL_VMX", "HW_CPU_X86_INTEL_TDX", "HW_GPU_API_DIRECTX_V10",
	"HW_GPU_API_DIRECTX_V11", "HW_GPU_API_DIRECTX_V12", "HW_GPU_API_DIRECT2D",
	"HW_GPU_API_DIRECT3D_V6_0", "HW_GPU_API_DIRECT3D_V7_0", "HW_GPU_API_DIRECT3D_V8_0",
	"HW_GPU_API_DIRECT3D_V8_1", "HW_GPU_API_DIRECT3D_V9_0", "HW_GPU_API_DIRECT3D_V9_0B",
	"HW_GPU_API_DIRECT3D_V9_0C", "HW_GPU_API_DIRECT3D_V9_0L", "HW_GPU_API_DIRECT3D_V10_0",
	"HW_GPU_API_DIRECT3D_V10_1", "HW_GPU_API_DIRECT3D_V11_0", "HW_GPU_API_DIRECT3D_V11_1",
	"HW_GPU_API_DIRECT3D_V11_2", "HW_GPU_API_DIRECT3D_V11_3", "HW_GPU_API_DIRECT3D_V12_0",
	"HW_GPU_API_VULKAN", "HW_GPU_API_DXVA", "HW_GPU_API_OPENCL_V1_0", "HW_GPU_API_OPENCL_V1_1",
	"HW_GPU_API_OPENCL_V1_2", "HW_GPU_API_OPENCL_V2_0", "HW_GPU_API_OPENCL_V2_1",
	"HW_GPU_API_OPENCL_V2_2", "HW_GPU_API_OPENGL_V1_1", "HW_GPU_API_OPENGL_V1_2",
	"HW_GPU_API_OPENGL_V1_3", "HW_GPU_API_OPENGL_V1_4", "HW_GPU_API_OPENGL_V1_5",
	"HW_GPU_API_OPENGL_V2_0", "HW_GPU_API_OPENGL_V2_1", "HW_GPU_API_OPENGL_V3_0",
	"HW_GPU_API_OPENGL_V3_1", "HW_GPU_API_OPENGL_V3_2", "HW_GPU_API_OPENGL_V3_3",
	"HW_GPU_API_OPENGL_V4_0", "HW_GPU_API_OPENGL_V4_1", "HW_GPU_API_OPENGL_V4_2",
	"HW_GPU_API_OPENGL_V4_3", "HW_GPU_API_OPENGL_V4_4", "HW_GPU_API_OPENGL_V4_5",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_0", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_1",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_2", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V1_3",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V2_0", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V2_1",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_0", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_2",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_5", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V3_7",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V5_0", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V5_2",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V5_3", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V6_0",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V6_1", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V6_2",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V7_0", "HW_GPU_CUDA_COMPUTE_CAPABILITY_V7_1",
	"HW_GPU_CUDA_COMPUTE_CAPABILITY_V7_2", "HW_GPU_CUDA_SDK_V6_5", "HW_GPU_CUDA_SDK_V7_5",
	"HW_GPU_CUDA_SDK_V8_0", "HW_GPU_CUDA_SDK_V9_0", "HW_GPU_CUDA_SDK_V9_1", "HW_GPU_CUDA_SDK_V9_2",
	"HW_GPU_CUDA_SDK_V10_0", "HW_GPU_MAX_DISPLAY_HEADS_1", "HW_GPU_MAX_DISPLAY_HEADS_2",
	"HW_GPU_MAX_DISPLAY_HEADS_4", "HW_GPU_MAX_DISPLAY_HEADS_6", "HW_GPU_MAX_DISPLAY_HEADS_8",
	"HW_GPU_RESOLUTION_W320H240", "HW_GPU_RESOLUTION_W640H480", "HW_GPU_RESOLUTION_W800H600",
	"HW_GPU_RESOLUTION_W1024H600", "HW_GPU_RESOLUTION_W1024H768", "HW_GPU_RESOLUTION_W1152H864",
	"HW_GPU_RESOLUTION_W1280H720", "HW_GPU_RESOLUTION_W1280H768", "HW_GPU_RESOLUTION_W1280H800",
	"HW_GPU_RESOLUTION_W1280H1024", "HW_GPU_RESOLUTION_W1360H768", "HW_GPU_RESOLUTION_W1366H768",
	"HW_GPU_RESOLUTION_W1440H900", "HW_GPU_RESOLUTION_W1600H900", "HW_GPU_RESOLUTION_W1600H1200",
	"HW_GPU_RESOLUTION_W1680H1050", "HW_GPU_RESOLUTION_W1920H1080", "HW_GPU_RESOLUTION_W1920H1200",
	"HW_GPU_RESOLUTION_W2560H1440", "HW_GPU_RESOLUTION_W2560H1600", "HW_GPU_RESOLUTION_W3840H2160",
	"HW_GPU_RESOLUTION_W7680H4320", "HW_NIC_SRIOV", "HW_NIC_MULTIQUEUE", "HW_NIC_VMDQ",
	"HW_NIC_PROGRAMMABLE_PIPELINE", "HW_NIC_ACCEL_SSL", "HW_NIC_ACCEL_IPSEC", "HW_NIC_ACCEL_TLS",
	"HW_NIC_ACCEL_DIFFIEH", "HW_NIC_ACCEL_RSA", "HW_NIC_ACCEL_ECC", "HW_NIC_ACCEL_LZS",
	"HW_NIC_ACCEL_DEFLATE", "HW_NIC_DCB_PFC", "HW_NIC_DCB_ETS", "HW_NIC_DCB_QCN",
	"HW_NIC_OFFLOAD_TSO", "HW_NIC_OFFLOAD_GRO", "HW_NIC_OFFLOAD_GSO", "HW_NIC_OFFLOAD_UFO",
	"HW_NIC_OFFLOAD_LRO", "HW_NIC_OFFLOAD_LSO", "HW_NIC_OFFLOAD_TCS", "HW_NIC_OFFLOAD_UCS",
	"HW_NIC_OFFLOAD_SCS", "HW_NIC_OFFLOAD_L2CRC", "HW_NIC_OFFLOAD_FDF", "HW_NIC_OFFLOAD_RXVLAN",
	"HW_NIC_OFFLOAD_TXVLAN", "HW_NIC_OFFLOAD_VXLAN", "HW_NIC_OFFLOAD_GRE", "HW_NIC_OFFLOAD_GENEVE",
	"HW_NIC_OFFLOAD_TXUDP", "HW_NIC_OFFLOAD_QINQ", "HW_NIC_OFFLOAD_RDMA", "HW_NIC_OFFLOAD_RXHASH",
	"HW_NIC_OFFLOAD_RX", "HW_NIC_OFFLOAD_TX", "HW_NIC_OFFLOAD_SG", "HW_NIC_OFFLOAD_SWITCHDEV",
	"HW_NIC_SRIOV_QOS_TX", "HW_NIC_SRIOV_QOS_RX", "HW_NIC_SRIOV_MULTIQUEUE", "HW_NIC_SRIOV_TRUSTED",
	"HW_NUMA_ROOT", "HW_NVME_CES", "HW_NVME_BES", "HW_NVME_WZS", "HW_PCI_LIVE_MIGRATABLE",
	"HW_PCI_ONE_TIME_USE", "MISC_SHARES_VIA_AGGREGATE", "OWNER_CYBORG", "OWNER_NOVA",
	"STORAGE_DISK_HDD", "STORAGE_DISK_SSD",
}

// compiledSpecRule is a rule with its name and value patterns compiled.
type compiledSpecRule struct {
	extraSpecRule
	nameRE  *regexp.Regexp
	valueRE *regexp.Regexp
}

// extraSpecValidator is the compiled rules: by name for those without
// parameters, all in order, and the namespaces they know.
type extraSpecValidator struct {
	exact      map[string]*compiledSpecRule
	rules      []*compiledSpecRule
	namespaces []*regexp.Regexp
}

// extraSpecChecks compiles the rules once, on first use.
var extraSpecChecks = sync.OnceValue(func() *extraSpecValidator {
	v, err := compileSpecRules(extraSpecRules())
	if err != nil {
		panic(err)
	}
	return v
})

// compileSpecRules compiles rules; an error is a rule that does not
// compile.
func compileSpecRules(rules []extraSpecRule) (*extraSpecValidator, error) {
	v := &extraSpecValidator{exact: map[string]*compiledSpecRule{}}
	seen := map[string]bool{}
	for _, r := range rules {
		name := r.name
		for _, p := range r.params {
			name = strings.ReplaceAll(name, "{"+p.name+"}", "(?P<"+p.name+">"+p.pattern+")")
		}
		c := &compiledSpecRule{extraSpecRule: r}
		var err error
		if c.nameRE, err = fullMatch(name); err != nil {
			return nil, fmt.Errorf("extra spec rule %s: %w", r.name, err)
		}
		if r.value.pattern != "" {
			if c.valueRE, err = fullMatch(r.value.pattern); err != nil {
				return nil, fmt.Errorf("extra spec rule %s: value: %w", r.name, err)
			}
		}
		if _, dup := v.exact[r.name]; !dup {
			v.exact[r.name] = c
			v.rules = append(v.rules, c)
		}
		if ns, _, ok := strings.Cut(name, ":"); ok && !seen[ns] {
			seen[ns] = true
			re, err := fullMatch(ns)
			if err != nil {
				return nil, fmt.Errorf("extra spec rule %s: namespace: %w", r.name, err)
			}
			v.namespaces = append(v.namespaces, re)
		}
	}
	return v, nil
}

// pySpace is Python's \s in a str pattern (str.isspace).
const pySpace = `[\t\n\v\f\r \x{1c}-\x{1f}\x{85}\p{Z}]`

// fullMatch compiles Python's pattern for re.fullmatch: anchored, with
// \d and \s as Python's (Unicode digits and spaces) rather than RE2's
// (ASCII); \w as Python's letters, digits and underscore.
func fullMatch(pattern string) (*regexp.Regexp, error) {
	p := strings.NewReplacer(`\d`, `\p{Nd}`, `\s`, pySpace, `\w`, `[\p{L}\p{N}_]`).Replace(pattern)
	return regexp.Compile(`^(?:` + p + `)$`)
}

// validateExtraSpec is Nova's validators.validate(name, value): nil for a
// key it knows with a value it accepts and for a key in no namespace it
// knows; else a 400 with Nova's message.
func validateExtraSpec(name, value string) error {
	return extraSpecChecks().validate(name, value)
}

func (v *extraSpecValidator) validate(name, value string) error {
	rule := v.exact[name]
	if rule == nil {
		i := slices.IndexFunc(v.rules, func(r *compiledSpecRule) bool { return r.nameRE.MatchString(name) })
		if i >= 0 {
			rule = v.rules[i]
		}
	}
	if rule != nil {
		return rule.check(value)
	}
	ns, _, ok := strings.Cut(name, ":")
	if !ok {
		return nil
	}
	if !slices.ContainsFunc(v.namespaces, func(re *regexp.Regexp) bool { return re.MatchString(ns) }) {
		return nil
	}
	return bad("Validation failed; extra spec '%s' does not appear to be a valid extra spec.", name)
}

// check is Nova's ExtraSpecValidator value checks.
func (r *compiledSpecRule) check(value string) error {
	switch r.value.kind {
	case specInteger:
		n, ok := pyInt(value)
		if !ok {
			return bad("Validation failed; '%s' is not a valid integer value.", value)
		}
		if r.value.max != nil && n.Cmp(big.NewInt(*r.value.max)) > 0 {
			return bad("Validation failed; '%s' is greater than the max value of '%d'.", n.String(), *r.value.max)
		}
		if r.value.min != nil && n.Cmp(big.NewInt(*r.value.min)) < 0 {
			return bad("Validation failed; '%s' is less than the min value of '%d'.", n.String(), *r.value.min)
		}
	case specBoolean:
		if _, err := strictBool(value); err != nil {
			return bad("Validation failed; '%s' is not a valid boolean-like value.", value)
		}
	default:
		switch {
		case r.valueRE != nil:
			if !r.valueRE.MatchString(value) {
				return bad("Validation failed; '%s' is not of the format '%s'.", value, r.value.pattern)
			}
		case r.value.enum != nil:
			if !slices.Contains(r.value.enum, value) {
				return bad("Validation failed; '%s' is not one of: %s.", value, strings.Join(r.value.enum, ", "))
			}
		}
	}
	return nil
}

// pyInt is Python's int(s) of a str: spaces around, a sign, decimal
// digits (any script's) with single underscores between them.
func pyInt(s string) (*big.Int, bool) {
	s = strings.TrimFunc(s, isPySpace)
	var b strings.Builder
	if s != "" && (s[0] == '+' || s[0] == '-') {
		b.WriteByte(s[0])
		s = s[1:]
	}
	digits, under := 0, false
	for _, c := range s {
		switch {
		case c == '_':
			if digits == 0 || under {
				return nil, false
			}
			under = true
		case unicode.IsDigit(c):
			b.WriteByte(byte('0' + digitValue(c)))
			digits++
			under = false
		default:
			return nil, false
		}
	}
	if digits == 0 || under {
		return nil, false
	}
	n, ok := new(big.Int).SetString(b.String(), 10)
	return n, ok
}

// isPySpace is Python's str.isspace for one character.
func isPySpace(c rune) bool { return unicode.IsSpace(c) || (c >= 0x1c && c <= 0x1f) }

// digitValue is the value of a decimal digit of any script: Unicode keeps
// each script's digits together, zero to nine, so its offset in its run of
// digits (unicode.Nd) modulo ten.
func digitValue(c rune) int {
	for _, r := range unicode.Nd.R16 {
		if rune(r.Lo) <= c && c <= rune(r.Hi) {
			return int(c-rune(r.Lo)) % 10
		}
	}
	for _, r := range unicode.Nd.R32 {
		if rune(r.Lo) <= c && c <= rune(r.Hi) {
			return int(c-rune(r.Lo)) % 10
		}
	}
	return 0
}
