package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/jsonenc"
)

// same fails unless Encode writes exactly what json.Encoder writes.
func same(t *testing.T, v any) {
	t.Helper()
	var want, got bytes.Buffer
	if err := json.NewEncoder(&want).Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	if err := jsonenc.Encode(&got, v); err != nil {
		t.Fatalf("Encode(%#v): %v", v, err)
	}
	if !bytes.Equal(want.Bytes(), got.Bytes()) {
		t.Fatalf("Encode(%#v)\n got %s\nwant %s", v, got.Bytes(), want.Bytes())
	}
}

type status string

func TestEncodeWritesWhatEncodingJSONWrites(t *testing.T) {
	var nilMap map[string]any
	var nilStrings []string
	for _, v := range []any{
		nil, "", "plain", `quote " and \ backslash`, "<tag> & amp", "tab\tnew\nline\rcr\bbs\fff\x00\x1f\x7f",
		"naïve ☃ 𝄞", "line\u2028sep\u2029para", "bad \xff utf-8 \xc3", true, false, 0, -1, 1 << 62, int64(-7), int32(5),
		uint64(1 << 63), 1.5, 3.0, math.Copysign(0, -1), 1e21, status("ACTIVE"), time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC),
		nilMap, nilStrings, map[string]string(nil), []any(nil), []map[string]any(nil), []map[string]string(nil),
		map[string][]map[string]any(nil), map[string]any{}, []any{}, []string{},
		map[string]any{"b": 1, "a": "x", "c": nil, "é": true, "A": []string{"z", "y"}, "<": "&"},
		map[string]string{"z": "1", "a": "2"},
		[]map[string]string{{"rel": "self", "href": "http://h/v2.1/p/servers/1?a=1&b=2"}},
		map[string][]map[string]any{"private": {{"version": 4, "addr": "10.0.0.3"}}, "a": {}},
		[]any{1, "two", nil, map[string]any{"x": []any{struct{ A int }{3}}}},
		map[string]any{"servers": []any{map[string]any{"id": "u", "links": []map[string]string{{"rel": "bookmark"}}}}},
		map[string]any{"nested": map[string]any{"deeper": map[string]string{"k": "v"}}, "ptr": new(int)},
	} {
		same(t, v)
	}
}

func TestEncodeRandomValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		same(t, randomValue(r, 4))
	}
}

func FuzzStrings(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "<>&", "\u2028\u2029", "\xff\xfe", "é", `"\`, "\x7f\u0080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		same(t, map[string]any{s: s, "list": []string{s}})
	})
}

func TestEncodeReportsEncodingJSONsErrors(t *testing.T) {
	err := jsonenc.Encode(&bytes.Buffer{}, map[string]any{"ok": 1, "bad": make(chan int)})
	var unsupported *json.UnsupportedTypeError
	if !errors.As(err, &unsupported) {
		t.Fatalf("a channel in a map: got %v, want json.UnsupportedTypeError", err)
	}
}

func randomValue(r *rand.Rand, depth int) any {
	n := 9
	if depth == 0 {
		n = 4
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return randomString(r)
	case 2:
		return r.IntN(2) == 1
	case 3:
		return r.IntN(1<<20) - 1<<19
	case 4:
		m := map[string]any{}
		for range r.IntN(6) {
			m[randomString(r)] = randomValue(r, depth-1)
		}
		return m
	case 5:
		s := []any{}
		for range r.IntN(4) {
			s = append(s, randomValue(r, depth-1))
		}
		return s
	case 6:
		m := map[string]string{}
		for range r.IntN(4) {
			m[randomString(r)] = randomString(r)
		}
		return m
	case 7:
		s := []string{}
		for range r.IntN(4) {
			s = append(s, randomString(r))
		}
		return s
	default:
		return []map[string]string{{randomString(r): randomString(r)}}
	}
}

func randomString(r *rand.Rand) string {
	const alphabet = "ab<>&\"\\\n\t\x01é☃\u2028"
	runes := []rune(alphabet)
	var b strings.Builder
	for range r.IntN(8) {
		if r.IntN(20) == 0 {
			b.WriteByte(0xff)
			continue
		}
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}

// serverList is a page of 1,000 servers shaped as GET /servers/detail
// answers at 2.1 for an admin.
func serverList() any {
	out := make([]any, 1000)
	for i := range out {
		id := fmt.Sprintf("%08d-1111-4222-8333-444455556666", i)
		out[i] = map[string]any{
			"id": id, "name": fmt.Sprintf("cellcloud-bench-%d", i), "status": "ACTIVE", "tenant_id": "demo",
			"user_id": "demo", "metadata": map[string]string{}, "hostId": strings.Repeat("ab", 28),
			"image":   map[string]any{"id": "img", "links": []map[string]string{{"rel": "bookmark", "href": "http://127.0.0.1:8774/demo/images/img"}}},
			"flavor":  map[string]any{"id": "1", "links": []map[string]string{{"rel": "bookmark", "href": "http://127.0.0.1:8774/demo/flavors/1"}}},
			"created": "2026-12-05T09:00:00Z", "updated": "2026-12-05T09:00:01Z",
			"addresses":  map[string][]map[string]any{"private": {{"version": 4, "addr": "10.0.3.7", "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}}},
			"accessIPv4": "", "accessIPv6": "", "links": []map[string]string{{"rel": "self", "href": "http://127.0.0.1:8774/v2.1/demo/servers/" + id}, {"rel": "bookmark", "href": "http://127.0.0.1:8774/demo/servers/" + id}},
			"OS-DCF:diskConfig": "MANUAL", "progress": 0, "OS-EXT-AZ:availability_zone": "nova", "config_drive": "",
			"key_name": nil, "OS-SRV-USG:launched_at": "2026-12-05T09:00:01.000000", "OS-SRV-USG:terminated_at": nil,
			"OS-EXT-STS:task_state": nil, "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1,
			"os-extended-volumes:volumes_attached": []any{}, "security_groups": []map[string]string{{"name": "default"}},
			"OS-EXT-SRV-ATTR:host": "cell1-host7", "OS-EXT-SRV-ATTR:hypervisor_hostname": "cell1-host7",
			"OS-EXT-SRV-ATTR:instance_name": "instance-" + id[:8],
		}
	}
	return map[string]any{"servers": out, "servers_links": []map[string]string{{"rel": "next", "href": "http://x/servers/detail?limit=1000&marker=y"}}}
}

func TestEncodeServerList(t *testing.T) { same(t, serverList()) }

func BenchmarkServerList(b *testing.B) {
	v := serverList()
	for _, c := range []struct {
		name string
		enc  func(*bytes.Buffer) error
	}{
		{"encoding_json", func(w *bytes.Buffer) error { return json.NewEncoder(w).Encode(v) }},
		{"jsonenc", func(w *bytes.Buffer) error { return jsonenc.Encode(w, v) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			var w bytes.Buffer
			for b.Loop() {
				w.Reset()
				if err := c.enc(&w); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(w.Len()))
		})
	}
}
