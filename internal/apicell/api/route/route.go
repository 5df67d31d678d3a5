// Package route answers for requests a ServeMux has no handler for: 405
// when the path exists under another method, else 404, as the OpenStack
// APIs do.
package route

import "net/http"

// Status is http.StatusMethodNotAllowed when mux serves r's path with
// another method, and http.StatusNotFound otherwise.
func Status(mux *http.ServeMux, r *http.Request) int {
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := mux.Handler(r2); p != "" {
			return http.StatusMethodNotAllowed
		}
	}
	return http.StatusNotFound
}
