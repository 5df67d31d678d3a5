package route

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatus(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(http.ResponseWriter, *http.Request) {})
	cases := []struct {
		method, path string
		want         int
	}{
		{"DELETE", "/things/1", http.StatusMethodNotAllowed},
		{"GET", "/nothing", http.StatusNotFound},
		{"POST", "/nothing", http.StatusNotFound},
	}
	for _, c := range cases {
		if got := Status(mux, httptest.NewRequest(c.method, c.path, nil)); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
}
