package hostsched

import (
	"slices"
	"testing"
)

func TestAnyHostMetadataItem(t *testing.T) {
	// Nova's utils tests' fixture: three aggregates, with comma-separated
	// values and spaces after a comma.
	h := &Host{Name: "h", Aggregates: []map[string]string{
		{"k1": "1", "k2": "2"},
		{"k1": "3", "k2": "4"},
		{"k1": "6,7", "k2": "8, 9"},
		{"k3": " , a ,\tb\x1c"},
	}}
	items := func(key string) []string {
		var got []string
		anyHostMetadataItem(h, key, func(item string) bool { got = append(got, item); return false })
		slices.Sort(got)
		return got
	}
	tests := []struct {
		key  string
		want []string
	}{
		{"k1", []string{"1", "3", "6", "7"}},
		{"k2", []string{"2", "4", "8", "9"}},
		{"k3", []string{"", "a", "b"}},
		{"k4", nil},
	}
	for _, tt := range tests {
		if got := items(tt.key); !slices.Equal(got, tt.want) {
			t.Errorf("items of %q = %q, want %q", tt.key, got, tt.want)
		}
	}
	if !anyHostMetadataItem(h, "k2", func(item string) bool { return item == "9" }) {
		t.Error("item 9 of k2 not found")
	}
	if anyHostMetadataItem(h, "k2", func(item string) bool { return item == "8, 9" }) {
		t.Error("a whole comma-separated value matched as one item")
	}
	if anyHostMetadataItem(&Host{}, "k1", func(string) bool { return true }) {
		t.Error("a host in no aggregate has items")
	}
}
