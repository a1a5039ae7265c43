package rig

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// SortedCopy returns the durations sorted, leaving ds alone.
func SortedCopy(ds []time.Duration) []time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s
}

// Median returns the median of xs (the mean of the two middle values for an
// even count), or 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// US converts a duration to microseconds.
func US(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// MS converts a duration to milliseconds.
func MS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Histogram counts values into bins equal bins over [lo, hi). Values below lo
// go to the first bin and values at or above hi to the last, so that nothing
// is dropped and the tail stays visible.
func Histogram(values []float64, lo, hi float64, bins int) []int {
	if bins <= 0 {
		return nil
	}
	counts := make([]int, bins)
	if hi <= lo {
		counts[0] = len(values)
		return counts
	}
	w := (hi - lo) / float64(bins)
	for _, v := range values {
		i := int(math.Floor((v - lo) / w))
		i = min(max(i, 0), bins-1)
		counts[i]++
	}
	return counts
}

// Round3 rounds to three significant decimals for the report.
func Round3(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	switch a := math.Abs(x); {
	case a >= 100:
		return math.Round(x*10) / 10
	case a >= 1:
		return math.Round(x*100) / 100
	default:
		return math.Round(x*1000) / 1000
	}
}
