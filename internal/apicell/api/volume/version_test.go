package volume

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
		want    version
		status  int
		message string
	}{
		{name: "no header", want: version{3, 0}},
		{name: "3.0", headers: []string{"volume 3.0"}, want: version{3, 0}},
		{name: "3.27", headers: []string{"volume 3.27"}, want: version{3, 27}},
		{name: "max", headers: []string{"volume 3.60"}, want: version{3, 60}},
		{name: "latest", headers: []string{"volume latest"}, want: version{3, 60}},
		{name: "latest any case", headers: []string{"VOLUME Latest"}, want: version{3, 60}},
		{name: "volume item among others", headers: []string{"compute 2.1, volume 3.12"}, want: version{3, 12}},
		{name: "first volume line", headers: []string{"compute 2.1", "volume 3.5"}, want: version{3, 5}},
		{name: "no volume item", headers: []string{"compute 2.90"}, want: version{3, 0}},
		{name: "above max", headers: []string{"volume 3.61"}, status: 406,
			message: "Version 3.61 is not supported by the API. Minimum is 3.0 and maximum is 3.60."},
		{name: "below min", headers: []string{"volume 2.0"}, status: 406,
			message: "Version 2.0 is not supported by the API. Minimum is 3.0 and maximum is 3.60."},
		{name: "v4", headers: []string{"volume 4.0"}, status: 406,
			message: "Version 4.0 is not supported by the API. Minimum is 3.0 and maximum is 3.60."},
		{name: "leading zero", headers: []string{"volume 3.01"}, status: 400,
			message: "API Version String 3.01 is of invalid format. Must be of format MajorNum.MinorNum."},
		{name: "words", headers: []string{"volume abc"}, status: 400,
			message: "API Version String abc is of invalid format. Must be of format MajorNum.MinorNum."},
		{name: "empty", headers: []string{"volume"}, status: 400,
			message: "API Version String  is of invalid format. Must be of format MajorNum.MinorNum."},
		{name: "huge", headers: []string{"volume 3.99999999999999999999"}, status: 406,
			message: "Version 3.99999999999999999999 is not supported by the API. Minimum is 3.0 and maximum is 3.60."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.headers {
				h.Add(versionHeader, v)
			}
			got, err := negotiate(h)
			if tc.status == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("negotiate = %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			var f *httpkit.Fault
			if !errors.As(err, &f) || f.Status != tc.status || f.Message != tc.message {
				t.Fatalf("negotiate error %v (%#v); want %d %q", err, f, tc.status, tc.message)
			}
		})
	}
}

func TestRequestVersion(t *testing.T) {
	ctx := context.Background()
	if v := requestVersion(ctx); v != minVersion {
		t.Errorf("no version in the context: %v", v)
	}
	if v := requestVersion(withVersion(ctx, version{3, 44})); v.String() != "3.44" {
		t.Errorf("version in the context: %v", v)
	}
}

// FuzzNegotiate checks that any header value is served in range or
// refused with a 400 or a 406, never anything else.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"volume 3.0", "volume latest", "volume 3.61", "volume 03.1", "compute 2.1, volume 3.5", "volume", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := negotiate(http.Header{versionHeader: {s}})
		if err == nil {
			if v.less(minVersion) || maxVersion.less(v) {
				t.Fatalf("%q gave %v, out of range", s, v)
			}
			return
		}
		var ft *httpkit.Fault
		if !errors.As(err, &ft) || (ft.Status != http.StatusBadRequest && ft.Status != http.StatusNotAcceptable) {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
