package cellsched

import "testing"

func TestWeightOffsetWeigher(t *testing.T) {
	tests := []struct {
		name   string
		offset float64
	}{
		{"zero", 0},
		{"positive", 999.5},
		{"negative", -1e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Candidate{Path: "api!c", WeightOffset: tt.offset}
			if got := (WeightOffsetWeigher{}).Weigh(&Request{}, c); got != tt.offset {
				t.Errorf("Weigh = %v, want %v", got, tt.offset)
			}
		})
	}
}
