package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// maxSamples bounds the samples one series keeps. Past it, the series keeps a
// uniform random sample of everything it was given (reservoir sampling), and
// its count and maximum stay exact.
const maxSamples = 1 << 20

// series collects durations for percentiles in bounded memory. It is not safe
// for concurrent use.
type series struct {
	limit   int
	n       int64
	max     time.Duration
	samples []time.Duration
	rng     *rand.Rand
}

func newSeries(limit int) *series {
	return &series{limit: limit, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

func (s *series) add(d time.Duration) {
	s.n++
	s.max = max(s.max, d)
	if len(s.samples) < s.limit {
		s.samples = append(s.samples, d)
		return
	}
	if i := s.rng.Int64N(s.n); i < int64(s.limit) {
		s.samples[i] = d
	}
}

// summary is the distribution of a series.
func (s *series) summary() summary {
	sum := summarize(s.samples)
	sum.Count = s.n
	sum.Max = s.max
	return sum
}

// summary describes a distribution of durations.
type summary struct {
	Count                    int64
	Min, Mean                time.Duration
	P50, P90, P99, P999, Max time.Duration
}

// summarize computes the distribution of samples, using the nearest-rank
// percentile: the smallest sample with at least p% of the samples at or
// below it. It sorts samples in place.
func summarize(samples []time.Duration) summary {
	if len(samples) == 0 {
		return summary{}
	}
	slices.Sort(samples)
	var total float64
	for _, d := range samples {
		total += float64(d)
	}
	return summary{
		Count: int64(len(samples)),
		Min:   samples[0],
		Mean:  time.Duration(total / float64(len(samples))),
		P50:   percentile(samples, 50),
		P90:   percentile(samples, 90),
		P99:   percentile(samples, 99),
		P999:  percentile(samples, 99.9),
		Max:   samples[len(samples)-1],
	}
}

// percentile returns the nearest-rank p-th percentile of sorted, which must
// not be empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	// The small epsilon keeps float error from pushing an exact rank, such
	// as 99.9% of 1000, up to the next one.
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
