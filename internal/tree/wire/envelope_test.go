package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func validEnvelope() *Envelope {
	return &Envelope{
		ID: "m1", Method: MethodInstanceGet, Version: V1, Kind: Targeted, Direction: Down,
		Target: "api!cell1!a", Route: []string{"api", "api!cell1"}, Sender: "api",
		Deadline: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), RequestID: "req-1",
		WantResponse: true, Payload: json.RawMessage(`{"uuid":"u1"}`),
	}
}

func encode(t testing.TB, e *Envelope) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRoundTrip(t *testing.T) {
	want := validEnvelope()
	got, err := Decode(encode(t, want))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if string(encode(t, got)) != string(encode(t, want)) {
		t.Errorf("round trip changed the envelope:\n got %s\nwant %s", encode(t, got), encode(t, want))
	}
	if got.Last() != "api!cell1" {
		t.Errorf("Last = %q", got.Last())
	}

	b := validEnvelope()
	b.Kind, b.Target, b.Direction, b.HopLimit = Broadcast, "", Up, 3
	if _, err := Decode(encode(t, b)); err != nil {
		t.Errorf("broadcast: %v", err)
	}
	r := validEnvelope()
	r.Kind, r.InReplyTo = Response, "m0"
	r.Results = []Result{{Cell: "api!cell1!a", Error: Errorf(CodeNotFound, "no such instance")}}
	got, err = Decode(encode(t, r))
	if err != nil {
		t.Fatalf("response: %v", err)
	}
	if !errors.Is(got.Results[0].Error, ErrNotFound) {
		t.Errorf("the error in a result lost its code: %v", got.Results[0].Error)
	}
}

func TestDecodeRejectsMalformedEnvelopes(t *testing.T) {
	mod := func(f func(e *Envelope)) []byte {
		e := validEnvelope()
		f(e)
		return encode(t, e)
	}
	longRoute := make([]string, 35)
	for i := range longRoute {
		longRoute[i] = "api"
	}
	cases := map[string][]byte{
		"empty":              nil,
		"garbage":            []byte("\x00\xff garbage"),
		"truncated":          encode(t, validEnvelope())[:40],
		"json null":          []byte("null"),
		"json array":         []byte(`[{"id":"m1"}]`),
		"json string":        []byte(`"envelope"`),
		"empty object":       []byte("{}"),
		"wrong field type":   []byte(`{"id":1}`),
		"route not a list":   []byte(`{"id":"m","method":"x","version":"1.0","kind":"targeted","target":"api","sender":"api","route":"api"}`),
		"oversized":          []byte(`{"id":"` + strings.Repeat("x", MaxSize) + `"}`),
		"no id":              mod(func(e *Envelope) { e.ID = "" }),
		"no method":          mod(func(e *Envelope) { e.Method = "" }),
		"no version":         mod(func(e *Envelope) { e.Version = "" }),
		"version one part":   mod(func(e *Envelope) { e.Version = "1" }),
		"version words":      mod(func(e *Envelope) { e.Version = "one.zero" }),
		"version negative":   mod(func(e *Envelope) { e.Version = "1.-1" }),
		"version three part": mod(func(e *Envelope) { e.Version = "1.0.0" }),
		"no sender":          mod(func(e *Envelope) { e.Sender = "" }),
		"bad sender":         mod(func(e *Envelope) { e.Sender = "api!" }),
		"no route":           mod(func(e *Envelope) { e.Route = nil }),
		"empty route":        mod(func(e *Envelope) { e.Route = []string{} }),
		"bad route":          mod(func(e *Envelope) { e.Route = []string{"api", "a.b"} }),
		"route too long":     mod(func(e *Envelope) { e.Route = longRoute }),
		"no kind":            mod(func(e *Envelope) { e.Kind = "" }),
		"bad kind":           mod(func(e *Envelope) { e.Kind = "multicast" }),
		"targeted no target": mod(func(e *Envelope) { e.Target = "" }),
		"bad target":         mod(func(e *Envelope) { e.Target = "api!!a" }),
		"response no reply":  mod(func(e *Envelope) { e.Kind = Response }),
		"broadcast no dir":   mod(func(e *Envelope) { e.Kind, e.Direction = Broadcast, "" }),
		"broadcast bad dir":  mod(func(e *Envelope) { e.Kind, e.Direction = Broadcast, "sideways" }),
		"hop limit negative": mod(func(e *Envelope) { e.Kind, e.HopLimit = Broadcast, -1 }),
		"hop limit too big":  mod(func(e *Envelope) { e.Kind, e.HopLimit = Broadcast, 17 }),
		"bad deadline":       []byte(strings.Replace(string(encode(t, validEnvelope())), "2030-01-02T03:04:05Z", "tomorrow", 1)),
	}
	for name, b := range cases {
		e, err := Decode(b)
		if err == nil {
			t.Errorf("%s: decoded %+v", name, e)
			continue
		}
		if !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: error %v does not wrap ErrBadMessage", name, err)
		}
		if e != nil {
			t.Errorf("%s: returned an envelope with the error", name)
		}
		// Translated for the wire, the error keeps its code.
		if AsError(err).Code != CodeBadMessage {
			t.Errorf("%s: AsError code = %s", name, AsError(err).Code)
		}
	}
	// Exactly the limit is fine as far as size goes.
	e := validEnvelope()
	e.Payload = nil
	base := len(encode(t, e))
	e.Payload = json.RawMessage(`"` + strings.Repeat("x", MaxSize-base-len(`,"payload":""`)) + `"`)
	if b := encode(t, e); len(b) != MaxSize {
		t.Fatalf("test envelope is %d bytes, want %d", len(b), MaxSize)
	} else if _, err := Decode(b); err != nil {
		t.Errorf("an envelope of exactly MaxSize bytes: %v", err)
	}
}

func TestParseVersion(t *testing.T) {
	good := map[string][2]int{"1.0": {1, 0}, "0.9": {0, 9}, "12.34": {12, 34}}
	for v, want := range good {
		ma, mi, err := ParseVersion(v)
		if err != nil || ma != want[0] || mi != want[1] {
			t.Errorf("ParseVersion(%q) = %d, %d, %v; want %d.%d", v, ma, mi, err, want[0], want[1])
		}
	}
	for _, v := range []string{"", "1", ".", "1.", ".1", "a.b", "1.x", "-1.0", "1.-2", "1.0.0", " 1.0", "1.0 "} {
		if _, _, err := ParseVersion(v); err == nil {
			t.Errorf("ParseVersion(%q) accepted", v)
		}
	}
}

func TestErrors(t *testing.T) {
	e := Errorf(CodeNoRoute, "cell %q is gone", "api!x")
	if !errors.Is(e, ErrNoRoute) || errors.Is(e, ErrNotFound) {
		t.Errorf("Is: %v", e)
	}
	if errors.Is(ErrNoRoute, e) {
		t.Error("a sentinel matched a specific error")
	}
	if got := e.Error(); got != `no_route: cell "api!x" is gone` {
		t.Errorf("Error() = %q", got)
	}
	if got := ErrGone.Error(); got != "gone" {
		t.Errorf("sentinel Error() = %q", got)
	}
	wrapped := fmt.Errorf("relay: %w", e)
	if !errors.Is(wrapped, ErrNoRoute) {
		t.Error("a wrapped wire error lost its code")
	}

	cases := []struct {
		in   error
		code Code
		msg  string
	}{
		{e, CodeNoRoute, `cell "api!x" is gone`},
		{wrapped, CodeNoRoute, `cell "api!x" is gone`},
		{fmt.Errorf("%w: 3 bytes", ErrBadMessage), CodeBadMessage, "bad_message: 3 bytes"},
		{errors.New("disk full"), CodeInternal, "disk full"},
	}
	for _, c := range cases {
		got := AsError(c.in)
		if got.Code != c.code || got.Message != c.msg {
			t.Errorf("AsError(%v) = %+v, want %s %q", c.in, got, c.code, c.msg)
		}
		// Through JSON and back, as it travels, it still matches its code.
		b, _ := json.Marshal(got)
		var back *Error
		if err := json.Unmarshal(b, &back); err != nil || !errors.Is(back, &Error{Code: c.code}) {
			t.Errorf("%s after JSON: %+v, %v", c.code, back, err)
		}
	}
	if AsError(nil) != nil {
		t.Error("AsError(nil) is not nil")
	}
}

func FuzzDecode(f *testing.F) {
	seed := validEnvelope()
	f.Add(encode(f, seed))
	b := *seed
	b.Kind, b.Direction, b.HopLimit = Broadcast, Down, 2
	f.Add(encode(f, &b))
	r := *seed
	r.Kind, r.InReplyTo, r.Results, r.Missing = Response, "m0", []Result{{Cell: "api", Error: ErrGone}}, []string{"api!x"}
	f.Add(encode(f, &r))
	f.Add([]byte("{}"))
	f.Add([]byte(`{"id":"x","route":[]}`))
	f.Add([]byte("null"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if e != nil || !errors.Is(err, ErrBadMessage) {
				t.Fatalf("Decode error %v (envelope %v) does not wrap ErrBadMessage", err, e)
			}
			return
		}
		// A decoded envelope is routable: it has a last hop, and it
		// survives a round trip.
		_ = e.Last()
		if _, _, err := ParseVersion(e.Version); err != nil {
			t.Fatalf("decoded an envelope with version %q", e.Version)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if len(again) > MaxSize {
			return // compacting the payloads can only shrink it; escaping may grow it
		}
		e2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", again, err)
		}
		// Once decoded, an envelope travels unchanged: encoding is a fixed point.
		if third, err := json.Marshal(e2); err != nil || string(third) != string(again) {
			t.Fatalf("an envelope changes as it travels: %s, then %s (%v)", again, third, err)
		}
	})
}
