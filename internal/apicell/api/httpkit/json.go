package httpkit

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/jsonenc"
)

// WriteJSON answers with status and v as JSON (Content-Type
// application/json), byte for byte as encoding/json's Encoder writes it:
// keys sorted, HTML characters escaped, a newline at the end.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = jsonenc.Encode(w, v)
}

// WriteMarshal answers with status and v as JSON, byte for byte as
// json.Marshal writes it (no newline at the end: Glance's answers). The
// value is encoded before anything is written, so one encoding/json
// refuses is a plain 500.
func WriteMarshal(w http.ResponseWriter, status int, v any) {
	b, err := jsonenc.Append(nil, v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
