package compute

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// TestValidateExtraSpec: Nova's extra spec validators (2.86) as a table of
// key, value and the 400's message ("" when accepted). The cases include
// Nova's own (nova/tests/unit/api/validation/extra_specs/test_validators.py).
func TestValidateExtraSpec(t *testing.T) {
	for _, c := range []struct{ key, value, msg string }{
		// Keys in no namespace Nova knows pass, whatever the value.
		{"hhw:cpu_realtime_mask", "^0", ""},
		{"w:cpu_realtime_mask", "^0", ""},
		{"hw_cpu_realtime_mask", "^0", ""},
		{"foo", "bar", ""},
		{"custom:anything", "at all", ""},
		{"resources!1:VCPU", "x", ""},
		// Unknown keys of a known namespace are refused.
		{"hw:cpu_realtime_maskk", "^0", "Validation failed; extra spec 'hw:cpu_realtime_maskk' does not appear to be a valid extra spec."},
		{"hw:cpu_realtime_mas", "^0", "Validation failed; extra spec 'hw:cpu_realtime_mas' does not appear to be a valid extra spec."},
		{"hw:foo", "bar", "Validation failed; extra spec 'hw:foo' does not appear to be a valid extra spec."},
		{"trait:NOT_A_TRAIT", "required", "Validation failed; extra spec 'trait:NOT_A_TRAIT' does not appear to be a valid extra spec."},
		{"trait1:custom_lower", "required", "Validation failed; extra spec 'trait1:custom_lower' does not appear to be a valid extra spec."},
		{"resources1:FOO", "1", "Validation failed; extra spec 'resources1:FOO' does not appear to be a valid extra spec."},
		{"capabilities:nope", "x", "Validation failed; extra spec 'capabilities:nope' does not appear to be a valid extra spec."},
		{"quota:cpu", "1", "Validation failed; extra spec 'quota:cpu' does not appear to be a valid extra spec."},
		{"os:foo", "1", "Validation failed; extra spec 'os:foo' does not appear to be a valid extra spec."},
		{"powervm:foo", "1", "Validation failed; extra spec 'powervm:foo' does not appear to be a valid extra spec."},
		// Patterns.
		{"hw:cpu_realtime_mask", "0", ""},
		{"hw:cpu_realtime_mask", "^0", ""},
		{"hw:cpu_realtime_mask", "^0,2-3,1", ""},
		{"hw:cpu_dedicated_mask", "0-4,^2,6", ""},
		{"hw:mem_page_size", "large", ""},
		{"hw:mem_page_size", "2kbit", ""},
		{"hw:mem_page_size", "1GB", ""},
		{"hw:mem_page_size", "2048", ""},
		{"hw:cpu_realtime_mask", "a", `Validation failed; 'a' is not of the format '(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*'.`},
		{"hw:cpu_realtime_mask", "^0,2-3,b", `Validation failed; '^0,2-3,b' is not of the format '(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*'.`},
		{"hw:mem_page_size", "largest", `Validation failed; 'largest' is not of the format '(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)'.`},
		{"hw:mem_page_size", "2kbits", `Validation failed; '2kbits' is not of the format '(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)'.`},
		{"hw:mem_page_size", "1gigabyte", `Validation failed; '1gigabyte' is not of the format '(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)'.`},
		{"hw:numa_cpus.0", "0-3", ""},
		{"hw:numa_cpus.1", "x", `Validation failed; 'x' is not of the format '\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*'.`},
		{"hw:pmem", "GOLD,SILVER", ""},
		{"hw:pmem", "GOLD;", `Validation failed; 'GOLD;' is not of the format '([a-zA-Z0-9_]+(,)?)+'.`},
		{"pci_passthrough:alias", "a1:2, b2:1", ""},
		{"pci_passthrough:alias", "a1", `Validation failed; 'a1' is not of the format '[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*'.`},
		{"powervm:proc_units", "0.5", ""},
		{"powervm:proc_units", "1", `Validation failed; '1' is not of the format '\d+\.\d+'.`},
		// Python's \d is any script's digit; a trailing newline is no match.
		{"hw:cpu_realtime_mask", "٣", ""},
		{"hw:cpu_realtime_mask", "0\n", `Validation failed; '0` + "\n" + `' is not of the format '(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*'.`},
		// Enumerations.
		{"hw:cpu_thread_policy", "prefer", ""},
		{"hw:cpu_policy", "mixed", ""},
		{"hw:pci_numa_affinity_policy", "socket", ""},
		{"hw:viommu_model", "smmuv3", ""},
		{"hw:tpm_version", "2.0", ""},
		{"hw:tpm_secret_security", "deployment", ""},
		{"hw:sound_model", "ich9", ""},
		{"hw:usb_model", "qemu-xhci", ""},
		{"hw:ephemeral_encryption_format", "luksv2", ""},
		{"hw:cpu_thread_policy", "preferred", "Validation failed; 'preferred' is not one of: prefer, isolate, require."},
		{"hw:emulator_threads_policy", "iisolate", "Validation failed; 'iisolate' is not one of: isolate, share."},
		{"hw:pci_numa_affinity_policy", "lgacy", "Validation failed; 'lgacy' is not one of: required, preferred, legacy, socket."},
		{"hw:tpm_model", "tpm-foo", "Validation failed; 'tpm-foo' is not one of: tpm-tis, tpm-crb."},
		{"hw:tpm_version", "4.2", "Validation failed; '4.2' is not one of: 1.2, 2.0."},
		{"hw:mem_encryption_model", "amd", "Validation failed; 'amd' is not one of: amd-sev, amd-sev-es, amd-sev-snp."},
		{"os:secure_boot", "optional", "Validation failed; 'optional' is not one of: disabled, required."},
		{"group_policy", "isolate", ""},
		{"group_policy", "all", "Validation failed; 'all' is not one of: isolate, none."},
		{"quota:cpu_shares_level", "custom", ""},
		{"quota:vif_shares_level", "max", "Validation failed; 'max' is not one of: custom, high, normal, low."},
		{"powervm:processor_compatibility", "POWER8", ""},
		{"powervm:dedicated_sharing_mode", "x", "Validation failed; 'x' is not one of: share_idle_procs, keep_idle_procs, share_idle_procs_active, share_idle_procs_always."},
		// Traits: standard and custom, in a group or not.
		{"trait:HW_CPU_X86_AVX2", "required", ""},
		{"trait1:COMPUTE_STATUS_DISABLED", "forbidden", ""},
		{"trait_group-a:CUSTOM_GOLD", "required", ""},
		{"trait:CUSTOM_GOLD", "maybe", "Validation failed; 'maybe' is not one of: required, forbidden."},
		// Integers: Python's int().
		{"hw:numa_nodes", "1", ""},
		{"hw:numa_nodes", " +2 ", ""},
		{"hw:numa_nodes", "1_0", ""},
		{"hw:numa_nodes", "1__0", "Validation failed; '1__0' is not a valid integer value."},
		{"hw:numa_nodes", "1.0", "Validation failed; '1.0' is not a valid integer value."},
		{"hw:serial_port_count", "five", "Validation failed; 'five' is not a valid integer value."},
		{"hw:serial_port_count", "!", "Validation failed; '!' is not a valid integer value."},
		{"hw:serial_port_count", "", "Validation failed; '' is not a valid integer value."},
		{"hw:numa_nodes", "0", "Validation failed; '0' is less than the min value of '1'."},
		{"hw:numa_nodes", "-007", "Validation failed; '-7' is less than the min value of '1'."},
		{"hw:numa_mem.0", "1024", ""},
		{"hw:numa_mem.0", "0", "Validation failed; '0' is less than the min value of '1'."},
		{"hw:redirected_usb_ports", "15", ""},
		{"hw:redirected_usb_ports", "16", "Validation failed; '16' is greater than the max value of '15'."},
		{"hw:redirected_usb_ports", "99999999999999999999999", "Validation failed; '99999999999999999999999' is greater than the max value of '15'."},
		{"powervm:min_mem", "255", "Validation failed; '255' is less than the min value of '256'."},
		{"powervm:shared_weight", "256", "Validation failed; '256' is greater than the max value of '255'."},
		{"quota:cpu_quota", "-1", ""},
		{"quota:cpu_period", "-1", "Validation failed; '-1' is less than the min value of '0'."},
		{"quota:disk_total_iops_sec", "100", ""},
		{"hw_rng:rate_bytes", "x", "Validation failed; 'x' is not a valid integer value."},
		{"hw_video:ram_max_mb", "64", ""},
		{"resources:VCPU", "2", ""},
		{"resources1:PCPU", "-1", ""},
		{"resources_g:CUSTOM_MAGIC", "x", "Validation failed; 'x' is not a valid integer value."},
		{"resources:NET_PACKET_RATE_KILOPACKET_PER_SEC", "10", ""},
		{"hw:numa_nodes", "٢", ""},
		// Booleans: oslo's strict bool_from_string.
		{"hw:cpu_realtime", "1", ""},
		{"hw:cpu_realtime", "0", ""},
		{"hw:mem_encryption", "true", ""},
		{"hw:boot_menu", "y", ""},
		{"hw:locked_memory", " Yes ", ""},
		{"hide_hypervisor_id", "false", ""},
		{"hw:cpu_realtime", "2", "Validation failed; '2' is not a valid boolean-like value."},
		{"hw:cpu_realtime", "00", "Validation failed; '00' is not a valid boolean-like value."},
		{"hw:mem_encryption", "tru", "Validation failed; 'tru' is not a valid boolean-like value."},
		{"hw_rng:allowed", "yah", "Validation failed; 'yah' is not a valid boolean-like value."},
		{"powervm:srr_capability", "", "Validation failed; '' is not a valid boolean-like value."},
		// Free text.
		{"accel:device_profile", "anything", ""},
		{"aggregate_instance_extra_specs:ssd", "<in> true", ""},
		{"aggregate_instance_extra_specs:", "x", "Validation failed; extra spec 'aggregate_instance_extra_specs:' does not appear to be a valid extra spec."},
		{"capabilities:hypervisor_type", "s== fake", ""},
		{"capabilities:cpu_info:arch", "x86_64", ""},
		{"capabilities:cpu_info", "x", ""},
		{"vmware:hw_version", "vmx-13", ""},
	} {
		err := validateExtraSpec(c.key, c.value)
		if c.msg == "" {
			if err != nil {
				t.Errorf("%q=%q: %v, want it accepted", c.key, c.value, err)
			}
			continue
		}
		var f *httpkit.Fault
		if !errors.As(err, &f) || f.Status != http.StatusBadRequest || f.Message != c.msg {
			t.Errorf("%q=%q: %v, want a 400 %q", c.key, c.value, err, c.msg)
		}
	}
}

// TestExtraSpecRules: every rule compiles, every rule without parameters
// is found by its own name, and the namespaces are Nova's (its test's
// list, with powervm).
func TestExtraSpecRules(t *testing.T) {
	v, err := compileSpecRules(extraSpecRules())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range v.rules {
		if len(r.params) == 0 && !r.nameRE.MatchString(r.name) {
			t.Errorf("rule %s does not match its own name", r.name)
		}
	}
	var ns []string
	for _, re := range v.namespaces {
		ns = append(ns, strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$"))
	}
	slices.Sort(ns)
	want := []string{"accel", "aggregate_instance_extra_specs", "capabilities", "hw", "hw_rng", "hw_video", "os",
		"pci_passthrough", "powervm", "quota", "resources(?P<group>([a-zA-Z0-9_-]{1,64})?)",
		"trait(?P<group>([a-zA-Z0-9_-]{1,64})?)", "vmware"}
	if !slices.Equal(ns, want) {
		t.Errorf("namespaces %q, want %q", ns, want)
	}
	if len(standardTraits) < 300 || len(standardResourceClasses) != 21 {
		t.Errorf("%d standard traits, %d resource classes", len(standardTraits), len(standardResourceClasses))
	}
	// A rule that does not compile is an error, not a panic.
	if _, err := compileSpecRules([]extraSpecRule{{name: "x:(", value: anyString}}); err == nil {
		t.Error("a rule that does not compile was taken")
	}
}

func TestPyInt(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{"0", "0", true}, {"-12", "-12", true}, {"+3", "3", true}, {"\t 4\n", "4", true},
		{"1_000", "1000", true}, {"٤٢", "42", true}, {"１２", "12", true},
		{"_1", "", false}, {"1_", "", false}, {"1__0", "", false}, {"", "", false}, {"-", "", false},
		{"0x10", "", false}, {"1e3", "", false}, {"1 2", "", false},
	} {
		n, ok := pyInt(c.in)
		if ok != c.ok || (ok && n.String() != c.want) {
			t.Errorf("pyInt(%q) = %v %v, want %s %v", c.in, n, ok, c.want, c.ok)
		}
	}
}
