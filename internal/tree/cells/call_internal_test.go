package cells

import (
	"testing"
	"time"
)

func TestGatherMarginIsAFifthOfTheTimeLeftWithinBounds(t *testing.T) {
	for _, c := range []struct{ left, want time.Duration }{
		{100 * time.Millisecond, minGatherMargin},
		{time.Second, 200 * time.Millisecond},
		{4 * time.Second, 800 * time.Millisecond},
		{time.Minute, maxGatherMargin},
	} {
		if got := gatherMargin(c.left); got != c.want {
			t.Errorf("gatherMargin(%v) = %v, want %v", c.left, got, c.want)
		}
	}
}
